package authenticode_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/certs/authenticode"
	"github.com/provisionhq/provision/internal/certs/certstest"
)

// evSignedFile is a real program signed by a commercial CA with an EV
// certificate and an RFC 3161 timestamp, shipped as test data by
// golang.org/x/sys (in this module's build list). It is found in the module
// cache; tests never fetch it.
func evSignedFile(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Skipf("golang.org/x/sys is not in the build list: %v", err)
	}
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skip(err)
	}
	file := filepath.Join(strings.TrimSpace(string(cache)), "golang.org", "x", "sys@"+strings.TrimSpace(string(out)), "windows", "testdata", "ev-signed-file.exe")
	if _, err := os.Stat(file); err != nil {
		t.Skipf("golang.org/x/sys is not in the module cache (run go mod download): %v", err)
	}
	return file
}

func TestRealEVSignedFile(t *testing.T) {
	certstest.Require(t, "openssl")
	certstest.Require(t, "osslsigncode")
	file := evSignedFile(t)
	res, err := authenticode.ScanFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signed || len(res.Signatures) != 1 {
		t.Fatalf("signed=%v with %d signatures", res.Signed, len(res.Signatures))
	}
	sig := res.Signatures[0]
	ossl := osslsigncodeDigests(t, file)
	if sig.ComputedDigest != ossl[0].Calculated || sig.ImageDigest != ossl[0].Current || !sig.DigestValid {
		t.Errorf("digest %s/%s valid=%v, osslsigncode %s/%s", sig.ImageDigest, sig.ComputedDigest, sig.DigestValid, ossl[0].Current, ossl[0].Calculated)
	}
	if !sig.SignatureValid {
		t.Errorf("signature: %s", sig.SignatureError)
	}
	dir := t.TempDir()
	sigFile := filepath.Join(dir, "sig.der")
	certstest.Run(t, nil, "osslsigncode", "extract-signature", "-in", file, "-out", sigFile)
	digests := signedDigests(t, sigFile)
	if len(digests) != 1 || digests[0] != [2]string{sig.DigestAlgorithm, sig.ImageDigest} {
		t.Errorf("openssl reads %v, we %s %s", digests, sig.DigestAlgorithm, sig.ImageDigest)
	}
	embedded := pemCertificates(t, sigFile, dir)
	if len(embedded) != len(sig.Certificates) {
		t.Fatalf("openssl lists %d certificates, we %d", len(embedded), len(sig.Certificates))
	}
	signerFound := false
	for _, f := range embedded {
		found := false
		for _, info := range sig.Certificates {
			if info.ThumbprintSHA256 == certstest.Fingerprint(t, f, "sha256") {
				checkCertificate(t, info, f)
				found = true
				signerFound = signerFound || info.ThumbprintSHA1 == sig.Signer.ThumbprintSHA1
			}
		}
		if !found {
			t.Errorf("certificate %s listed by openssl is missing", f)
		}
	}
	if !signerFound || !strings.Contains(sig.Signer.Subject, "jurisdictionC=US") {
		t.Errorf("signer %q not among the embedded certificates or its EV fields unnamed", sig.Signer.Subject)
	}
	// osslsigncode prints "Timestamp time: Nov 23 17:04:26 2021 GMT".
	out, _ := exec.Command("osslsigncode", "verify", "-in", file).CombinedOutput()
	var stamped time.Time
	for _, line := range strings.Split(string(out), "\n") {
		if _, value, ok := strings.Cut(line, "Timestamp time:"); ok {
			stamped = opensslTime(t, value)
		}
	}
	if sig.Timestamp == nil || sig.Timestamp.Kind != "rfc3161" || !sig.Timestamp.Valid || sig.SigningTime == nil || !sig.SigningTime.Equal(stamped) {
		t.Errorf("timestamp %+v at %v, osslsigncode says %v", sig.Timestamp, sig.SigningTime, stamped)
	}
}
