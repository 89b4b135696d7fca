package wire

import "crypto/tls"

// CipherSuites are the TLS 1.2 suites the server offers and the agent
// accepts: ECDHE key exchange (forward secrecy) with an AEAD cipher
// (AES-GCM or ChaCha20-Poly1305), nothing with CBC, SHA-1 MACs or RSA key
// transport. TLS 1.3's suites are all of that kind and not configurable.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig is the base of every TLS configuration between agent and
// server: TLS 1.2 or later, with only CipherSuites for 1.2.
func TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites}
}
