package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

func TestDecodeSettingsRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, raw := range []string{
		`{"sever":"https://x"}`, // a typo is not ignored
		`{"server":1}`,
		`{"server":"https://x"} {}`,
		`[]`,
		`{"max_wait_ms":-1}`,
		`{"interval_ms":99999999999999999}`,
		`{"max_attempts":-2}`,
		`{"server":"https://x"` + strings.Repeat(" ", maxSettingsBytes) + `}`,
	} {
		if _, err := decodeUpload([]byte(raw)); err == nil {
			t.Errorf("upload settings %.60q accepted", raw)
		}
	}
	for _, raw := range []string{`{"software":{"typ":"vpn"}}`, `{"limits":{"max_age_ms":-5}}`, `{"aggregation_period_ms":"1h"}`} {
		if _, _, err := parseOpenSettings("dir", []byte(raw)); err == nil {
			t.Errorf("open settings %q accepted", raw)
		}
	}
	up, err := decodeUpload([]byte(`{"server":"https://t.example","interval_ms":1100,"max_wait_ms":0}`))
	if err != nil || up.Server != "https://t.example" || up.Interval.Milliseconds() != 1100 {
		t.Fatalf("%+v %v", up, err)
	}
	cfg, s, err := parseOpenSettings("dir", []byte(`{"software":{"type":"vpn","name":"N","version":"1"},"limits":{"max_events":5,"max_age_ms":60000}}`))
	if err != nil || cfg.Limits.MaxEvents != 5 || cfg.Limits.MaxAge.Seconds() != 60 || s.Software.Name != "N" {
		t.Fatalf("%+v %+v %v", cfg, s, err)
	}
}

// testChain is a leaf and its root, made with openssl for these tests.
func testChain(t testing.TB) (pemText []byte, der []byte, n int) {
	pemText, err := os.ReadFile("testdata/chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	rest := pemText
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		der = append(der, b.Bytes...)
		n++
	}
	return pemText, der, n
}

func TestSplitChains(t *testing.T) {
	pemText, der, n := testChain(t)
	a, err := splitPEM(pemText)
	if err != nil || len(a) != n {
		t.Fatalf("PEM: %d certificates, %v; want %d", len(a), err, n)
	}
	b, err := splitDER(der)
	if err != nil || len(b) != n {
		t.Fatalf("DER: %d certificates, %v; want %d", len(b), err, n)
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("certificate %d differs between PEM and DER", i)
		}
	}
	for _, bad := range [][]byte{nil, der[:len(der)-1], []byte("junk")} {
		if _, err := splitDER(bad); err == nil {
			t.Errorf("DER %d bytes accepted", len(bad))
		}
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	for _, bad := range [][]byte{nil, key, append(append([]byte{}, pemText...), "trailing"...)} {
		if _, err := splitPEM(bad); err == nil {
			t.Errorf("PEM %.40q accepted", bad)
		}
	}
	long := []byte(strings.Repeat(string(pemText), maxChainCerts/n+1))
	if _, err := splitPEM(long); err == nil {
		t.Error("more than maxChainCerts accepted")
	}
}

func FuzzUploadSettings(f *testing.F) {
	f.Add([]byte(`{"server":"https://t.example","ca_file":"ca.pem","pin":"00","encoding":"zstd","max_attempts":3,"interval_ms":1100}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		up, err := decodeUpload(raw)
		if err != nil {
			return
		}
		if up.MaxWait < 0 || up.Interval < 0 || up.BackoffBase < 0 || up.BackoffMax < 0 || up.MaxAttempts < 0 {
			t.Fatalf("negative setting accepted: %+v", up)
		}
	})
}

func FuzzOpenSettings(f *testing.F) {
	f.Add([]byte(`{"software":{"type":"vpn","name":"Secure Connection","version":"5.14.0.1234"},"license_provider_site":"https://shop.example.com","limits":{"max_events":10}}`))
	f.Add([]byte(`{"aggregation_period_ms":3600000,"log_stderr":true}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, _, err := parseOpenSettings("dir", raw)
		if err != nil {
			return
		}
		if cfg.AggregationPeriod < 0 || cfg.Limits.MaxAge < 0 || cfg.Limits.MaxEvents < 0 || cfg.Limits.MaxBytes < 0 {
			t.Fatalf("negative setting accepted: %+v", cfg)
		}
	})
}

func FuzzSplitChain(f *testing.F) {
	pemText, der, _ := testChain(f)
	f.Add(der, false)
	f.Add(pemText, true)
	f.Fuzz(func(t *testing.T, raw []byte, isPEM bool) {
		split := splitDER
		if isPEM {
			split = splitPEM
		}
		chain, err := split(raw)
		if err != nil {
			return
		}
		if len(chain) == 0 || len(chain) > maxChainCerts {
			t.Fatalf("%d certificates", len(chain))
		}
		for _, c := range chain {
			if _, err := x509.ParseCertificate(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}
