package certs

import (
	"testing"
)

// Seeds in testdata/fuzz/FuzzParseBundle: a PEM chain made by openssl, the
// same as DER, and an OpenSSL TRUSTED CERTIFICATE.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := ParseBundle(data)
		if err != nil {
			return
		}
		if len(parsed) == 0 {
			t.Fatal("no certificates and no error")
		}
		chain := Build(parsed, Verification{})
		if len(chain.Certificates) != len(parsed) || chain.Trusted == (chain.TrustError != "") {
			t.Fatalf("chain %+v", chain)
		}
	})
}
