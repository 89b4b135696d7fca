package forward

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/wire"
)

// gaPeer is a local Google: a token endpoint that verifies the service
// account's JWT assertion with the account's public key, and the user
// deletion endpoint, which checks the bearer token and the request.
type gaPeer struct {
	t        *testing.T
	pub      *rsa.PublicKey
	email    string
	srv      *httptest.Server
	mu       sync.Mutex
	failOnce bool
	tokens   int
	deleted  []GA4DeletionRequest
}

func (p *gaPeer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		http.Error(w, "bad grant", http.StatusBadRequest)
		return
	}
	parts := strings.Split(r.Form.Get("assertion"), ".")
	if len(parts) != 3 {
		http.Error(w, "bad assertion", http.StatusBadRequest)
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(p.pub, crypto.SHA256, sum[:], sig); err != nil {
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Scope, Aud string
		Exp             int64
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Iss != p.email || claims.Scope != GA4DeletionScope ||
		claims.Aud != p.srv.URL+"/token" || claims.Exp < time.Now().Unix() {
		http.Error(w, "claims", http.StatusUnauthorized)
		return
	}
	p.mu.Lock()
	p.tokens++
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"local-token","token_type":"Bearer","expires_in":3600}`)
}

func (p *gaPeer) upsert(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer local-token" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failOnce {
		p.failOnce = false
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var req GA4DeletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "body", http.StatusBadRequest)
		return
	}
	p.deleted = append(p.deleted, req)
	req.DeletionRequestTime = "2026-03-01T12:00:00.5Z"
	_ = json.NewEncoder(w).Encode(req)
}

// newGAPeer starts the peer and returns it with a service account key file
// for it.
func newGAPeer(t *testing.T) (*gaPeer, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	p := &gaPeer{t: t, pub: &key.PublicKey, email: "provision@test.iam.gserviceaccount.com", failOnce: true}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /upsert", p.upsert)
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": p.email, "private_key_id": "k1",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": p.srv.URL + "/token"})
	return p, sa
}

var fastRetry = wire.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 4}

// Google Analytics is told through the User Deletion API with a token
// from the service account flow; a refusal is retried.
func TestGA4DeletionThroughServiceAccount(t *testing.T) {
	p, sa := newGAPeer(t)
	d, err := NewGA4Deletion(GA4DeletionConfig{PropertyID: "123456789", Credentials: sa, Endpoint: p.srv.URL + "/upsert",
		Client: p.srv.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	const id = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d"
	at, err := d.Delete(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 1, 12, 0, 0, 5e8, time.UTC); !at.Equal(want) {
		t.Errorf("confirmed at %v, want %v", at, want)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokens != 1 || len(p.deleted) != 1 {
		t.Fatalf("tokens %d, deletions %d", p.tokens, len(p.deleted))
	}
	got := p.deleted[0]
	if got.Kind != "analytics#userDeletionRequest" || got.ID.Type != "CLIENT_ID" || got.ID.UserID != id || got.PropertyID != "123456789" {
		t.Errorf("request = %+v", got)
	}
}

// A key not accepted by the token endpoint fails the deletion, which is
// then not confirmed.
func TestGA4DeletionWithAForeignKeyIsRefused(t *testing.T) {
	p, _ := newGAPeer(t)
	_, other := newGAPeer(t)
	var m map[string]string
	_ = json.Unmarshal(other, &m)
	m["token_uri"] = p.srv.URL + "/token"
	m["client_email"] = p.email
	sa, _ := json.Marshal(m)
	d, err := NewGA4Deletion(GA4DeletionConfig{PropertyID: "1", Credentials: sa, Endpoint: p.srv.URL + "/upsert",
		Client: p.srv.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Delete(context.Background(), "x"); err == nil {
		t.Fatal("a deletion with a key the peer does not know was confirmed")
	}
}

// The third party gets a deletion notice signed like every delivery.
func TestWebhookDeletionIsSigned(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	var mu sync.Mutex
	var got []WebhookDeletion
	fail := true
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifySignature(r.Header.Get(SignatureHeader), body, secret, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var d WebhookDeletion
		_ = json.Unmarshal(body, &d)
		got = append(got, d)
	}))
	defer srv.Close()
	w, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: secret, Client: srv.Client(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Delete(context.Background(), "inst-1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Event != "deletion" || got[0].InstallationID != "inst-1" || got[0].DeliveryID == "" {
		t.Fatalf("notices = %+v", got)
	}
}
