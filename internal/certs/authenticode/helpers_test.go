package authenticode_test

import (
	"bufio"
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/certs/certstest"
)

// workDir holds what is expensive to make (the built images and keys) for
// the whole test binary.
var workDir string

var builds sync.Map // GOARCH -> *buildOnce

type buildOnce struct {
	once sync.Once
	path string
	err  error
}

// unsignedImage builds testdata/hello for Windows (amd64 gives a PE32+,
// 386 a PE32) with the Go toolchain, once per architecture.
func unsignedImage(tb testing.TB, goarch string) string {
	tb.Helper()
	v, _ := builds.LoadOrStore(goarch, &buildOnce{})
	b := v.(*buildOnce)
	b.once.Do(func() {
		b.path = filepath.Join(workDir, "hello-"+goarch+".exe")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", b.path, "./testdata/hello")
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH="+goarch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build test image: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// testPKI is a CA with a code-signing RSA key, a code-signing ECDSA key and
// a timestamping key, all made by openssl.
type testPKI struct {
	dir                string
	caCert, caKey      string
	rsaCert, rsaKey    string
	ecCert, ecKey      string
	tsaCert, tsaKey    string
	rsaChain, ecChain  string // signer then CA, for osslsigncode -certs
	tsaChain           string
	legacyTSAResponses string // folder where the legacy TSA keeps its answers
	rfc3161Responses   string
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  string
)

func newPKI(tb testing.TB) testPKI {
	tb.Helper()
	certstest.Require(tb, "openssl")
	certstest.Require(tb, "osslsigncode")
	pkiOnce.Do(func() {
		dir := filepath.Join(workDir, "pki")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			pkiErr = err.Error()
			return
		}
		p := testPKI{dir: dir}
		p.caCert, p.caKey = certstest.MakeCA(tb, dir, "Provision Test Code CA", "rsa")
		p.rsaCert, p.rsaKey = certstest.Issue(tb, dir, "Provision RSA Signer", "rsa", p.caCert, p.caKey,
			"extendedKeyUsage=codeSigning", "keyUsage=critical,digitalSignature", "basicConstraints=CA:FALSE")
		p.ecCert, p.ecKey = certstest.Issue(tb, dir, "Provision ECDSA Signer", "ec", p.caCert, p.caKey,
			"extendedKeyUsage=codeSigning", "keyUsage=critical,digitalSignature", "basicConstraints=CA:FALSE")
		p.tsaCert, p.tsaKey = certstest.Issue(tb, dir, "Provision Test TSA", "rsa", p.caCert, p.caKey,
			"extendedKeyUsage=critical,timeStamping", "keyUsage=critical,digitalSignature", "basicConstraints=CA:FALSE")
		p.rsaChain = concat(tb, filepath.Join(dir, "rsa-chain.pem"), p.rsaCert, p.caCert)
		p.ecChain = concat(tb, filepath.Join(dir, "ec-chain.pem"), p.ecCert, p.caCert)
		p.tsaChain = concat(tb, filepath.Join(dir, "tsa-chain.pem"), p.tsaCert, p.caCert)
		p.legacyTSAResponses = filepath.Join(dir, "legacy-responses")
		p.rfc3161Responses = filepath.Join(dir, "rfc3161-responses")
		for _, d := range []string{p.legacyTSAResponses, p.rfc3161Responses} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				pkiErr = err.Error()
				return
			}
		}
		pki = p
	})
	if pkiErr != "" {
		tb.Fatal(pkiErr)
	}
	return pki
}

func concat(tb testing.TB, out string, files ...string) string {
	tb.Helper()
	var all []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, data...)
	}
	if err := os.WriteFile(out, all, 0o600); err != nil {
		tb.Fatal(err)
	}
	return out
}

// rfc3161TSA is a timestamp authority on 127.0.0.1: the HTTP side is ours,
// the token is made by `openssl ts -reply`. Each answer is kept so that the
// test can read the time openssl put in it.
func rfc3161TSA(tb testing.TB, p testPKI) string {
	tb.Helper()
	return timestampAuthority(tb, p, false)
}

// lyingTSA answers every request with a token for other data, as a replayed
// or transplanted token would be.
func lyingTSA(tb testing.TB, p testPKI) string {
	tb.Helper()
	return timestampAuthority(tb, p, true)
}

func timestampAuthority(tb testing.TB, p testPKI, lie bool) string {
	tb.Helper()
	config := filepath.Join(p.dir, "tsa.cnf")
	serial := filepath.Join(p.dir, "tsaserial")
	conf := fmt.Sprintf(`[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = %s
crypto_device = builtin
signer_cert = %s
signer_key = %s
certs = %s
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha1, sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`, serial, p.tsaCert, p.tsaKey, p.caCert)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(serial); err != nil {
		if err := os.WriteFile(serial, []byte("01\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		n++
		query, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		queryFile := filepath.Join(p.rfc3161Responses, fmt.Sprintf("%d.tsq", n))
		replyFile := filepath.Join(p.rfc3161Responses, fmt.Sprintf("%d.tsr", n))
		if err := os.WriteFile(queryFile, query, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if lie {
			out, err := exec.Command("openssl", "ts", "-query", "-data", config, "-sha256", "-cert", "-no_nonce", "-out", queryFile).CombinedOutput()
			if err != nil {
				http.Error(w, string(out), http.StatusInternalServerError)
				return
			}
		}
		out, err := exec.Command("openssl", "ts", "-reply", "-config", config, "-queryfile", queryFile, "-out", replyFile).CombinedOutput()
		if err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
		reply, _ := os.ReadFile(replyFile)
		w.Header().Set("Content-Type", "application/timestamp-reply")
		_, _ = w.Write(reply)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// legacyTSA answers the legacy Authenticode timestamp protocol that
// osslsigncode -t speaks: the request is base64 DER of
// SEQUENCE { OID 1.3.6.1.4.1.311.3.2.1, SEQUENCE { OID data, [0] OCTET STRING signature } }
// and the answer base64 DER of a PKCS#7 SignedData over that signature,
// whose SignerInfo becomes the countersignature. The SignedData is made by
// `openssl cms -sign`.
func legacyTSA(tb testing.TB, p testPKI) string {
	tb.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		n++
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
		if err != nil {
			http.Error(w, "request is not base64: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Type asn1.ObjectIdentifier
			Blob struct {
				Type      asn1.ObjectIdentifier
				Signature []byte `asn1:"explicit,tag:0"`
			}
		}
		if _, err := asn1.Unmarshal(der, &req); err != nil {
			http.Error(w, "request: "+err.Error(), http.StatusBadRequest)
			return
		}
		content := filepath.Join(p.legacyTSAResponses, fmt.Sprintf("%d.bin", n))
		reply := filepath.Join(p.legacyTSAResponses, fmt.Sprintf("%d.p7", n))
		if err := os.WriteFile(content, req.Blob.Signature, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out, err := exec.Command("openssl", "cms", "-sign", "-binary", "-nodetach", "-nosmimecap",
			"-md", "sha256", "-in", content, "-signer", p.tsaCert, "-inkey", p.tsaKey,
			"-certfile", p.caCert, "-outform", "DER", "-out", reply).CombinedOutput()
		if err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
		signed, _ := os.ReadFile(reply)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, base64.StdEncoding.EncodeToString(signed))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// sign runs osslsigncode sign and returns the signed file.
func sign(tb testing.TB, in, out string, args ...string) string {
	tb.Helper()
	all := append([]string{"sign"}, args...)
	all = append(all, "-in", in, "-out", out)
	certstest.Run(tb, nil, "osslsigncode", all...)
	return out
}

// osslVerify is what `osslsigncode verify` reports for each signature:
// the digest as signed and as it calculates it from the file.
type osslVerify struct {
	Algorithm  string
	Current    string
	Calculated string
}

func osslsigncodeDigests(tb testing.TB, file string) []osslVerify {
	tb.Helper()
	// verify exits non-zero for an untrusted chain; its digest lines are
	// what we need, so the exit status is not checked.
	out, _ := exec.Command("osslsigncode", "verify", "-in", file).CombinedOutput()
	var all []osslVerify
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		line := scanner.Text()
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.ToLower(strings.TrimSpace(value))
		if key == "Signature Index" {
			all = append(all, osslVerify{})
			continue
		}
		if len(all) == 0 || value == "" {
			continue
		}
		// A mismatch is flagged after the digest ("... mismatch!!!").
		value = strings.Fields(value)[0]
		switch last := &all[len(all)-1]; key {
		case "Message digest algorithm":
			if last.Algorithm == "" {
				last.Algorithm = value
			}
		case "Current message digest":
			last.Current = value
		case "Calculated message digest":
			last.Calculated = value
		}
	}
	if len(all) == 0 {
		tb.Fatalf("osslsigncode verify printed no digest:\n%s", out)
	}
	return all
}

// signedDigests lists, in order, the digest algorithm and image digest of
// every SpcPeImageData in a DER signature as `openssl asn1parse` shows it.
func signedDigests(tb testing.TB, sigFile string) [][2]string {
	tb.Helper()
	out := certstest.Run(tb, nil, "openssl", "asn1parse", "-inform", "DER", "-in", sigFile)
	var found [][2]string
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		if !strings.Contains(line, ":1.3.6.1.4.1.311.2.1.15") && !strings.Contains(line, ":SPC_PE_IMAGE_DATAOBJ") {
			continue
		}
		var alg string
		for _, next := range lines[i+1:] {
			if alg == "" && strings.Contains(next, "prim: OBJECT") {
				name := strings.TrimSpace(next[strings.LastIndex(next, ":")+1:])
				switch name {
				case "md5", "sha1", "sha256", "sha384", "sha512":
					alg = name
				}
				continue
			}
			if alg != "" && strings.Contains(next, "OCTET STRING") && strings.Contains(next, "[HEX DUMP]:") {
				digest := strings.ToLower(next[strings.Index(next, "[HEX DUMP]:")+len("[HEX DUMP]:"):])
				found = append(found, [2]string{alg, strings.TrimSpace(digest)})
				break
			}
		}
	}
	return found
}

// pemCertificates splits `openssl pkcs7 -print_certs` output into one file
// per certificate.
func pemCertificates(tb testing.TB, sigFile, dir string) []string {
	tb.Helper()
	out := certstest.Run(tb, nil, "openssl", "pkcs7", "-inform", "DER", "-in", sigFile, "-print_certs")
	var files []string
	const end = "-----END CERTIFICATE-----"
	for i, chunk := range strings.SplitAfter(string(out), end) {
		begin := strings.Index(chunk, "-----BEGIN CERTIFICATE-----")
		if begin < 0 {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("embedded-%d.pem", i))
		if err := os.WriteFile(f, []byte(chunk[begin:]+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// opensslTime parses the times openssl prints, such as "Nov 29 02:10:00 2026 GMT".
func opensslTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	s = strings.Join(strings.Fields(s), " ")
	for _, layout := range []string{"Jan 2 15:04:05 2006 MST", "Jan 2 15:04:05.000 2006 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	tb.Fatalf("cannot parse openssl time %q", s)
	return time.Time{}
}

// tableOf returns the certificate table's offset and size and where its
// directory entry lies.
func tableOf(tb testing.TB, image []byte) (start, size, dirEntry int) {
	tb.Helper()
	pe := int(binary.LittleEndian.Uint32(image[0x3c:]))
	opt := pe + 24
	dirs := opt + 96
	if binary.LittleEndian.Uint16(image[opt:]) == 0x20b {
		dirs = opt + 112
	}
	dirEntry = dirs + 4*8
	return int(binary.LittleEndian.Uint32(image[dirEntry:])), int(binary.LittleEndian.Uint32(image[dirEntry+4:])), dirEntry
}
