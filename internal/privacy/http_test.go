package privacy_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/wire"
)

func post(t *testing.T, h http.Handler, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return b.Error.Code
}

func TestDeletionHandler(t *testing.T) {
	r := newRig(t)
	var logs bytes.Buffer
	svc, err := privacy.New(privacy.Options{Store: r.ps, Manifest: r.m, Now: r.clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	h := privacy.NewDeletionHandler(svc)
	id := newInstallationID()
	r.submitDays(t, id, 3)

	w := post(t, h, "/v1/deletion", `{"installation_id":"`+id+`","request_id":"withdraw-1"}`)
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp wire.DeletionAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.RequestID != "withdraw-1" || resp.Status != privacy.StatusComplete {
		t.Errorf("response %+v", resp)
	}
	if n := countFor(r.logRecords(t), id); n != 0 {
		t.Errorf("%d records left", n)
	}
	// A resend (the agent did not see the answer) gets the same answer.
	if w := post(t, h, "/v1/deletion", `{"installation_id":"`+id+`","request_id":"withdraw-1"}`); w.Code != http.StatusAccepted {
		t.Errorf("resend: %d %s", w.Code, w.Body)
	}
	if strings.Contains(logs.String(), id) {
		t.Errorf("the installation id was logged: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "withdraw-1") {
		t.Errorf("the erasure was not logged by request id: %q", logs.String())
	}

	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", `{`, 400, wire.CodeBadJSON},
		{"unknown key", `{"installation_id":"` + id + `","request_id":"a","ip":"1.2.3.4"}`, 400, wire.CodeBadJSON},
		{"trailing data", `{"installation_id":"` + id + `","request_id":"a"} {}`, 400, wire.CodeBadJSON},
		{"no request id", `{"installation_id":"` + id + `"}`, 400, wire.CodeBadRequestID},
		{"bad request id", `{"installation_id":"` + id + `","request_id":"a b"}`, 400, wire.CodeBadRequestID},
		{"bad installation id", `{"installation_id":"1234","request_id":"a"}`, 400, wire.CodeBadInstallationID},
		{"conflict", `{"installation_id":"` + newInstallationID() + `","request_id":"withdraw-1"}`, 409, wire.CodeRequestConflict},
		{"too large", `{"installation_id":"` + strings.Repeat("x", privacy.MaxRequestBody) + `"}`, 413, wire.CodeBodyTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := post(t, h, "/v1/deletion", c.body)
			if w.Code != c.status || errorCode(t, w) != c.code {
				t.Errorf("got %d %s, want %d %s", w.Code, w.Body, c.status, c.code)
			}
		})
	}
	// The agent sends Content-Encoding: identity; anything compressed is refused.
	if w := post(t, h, "/v1/deletion", `{"installation_id":"`+id+`","request_id":"withdraw-1"}`, "Content-Encoding", "identity"); w.Code != http.StatusAccepted {
		t.Errorf("identity: %d", w.Code)
	}
	if w := post(t, h, "/v1/deletion", `{}`, "Content-Encoding", "gzip"); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("gzip: %d", w.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/deletion", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestAdminEndpointsNeedTheToken(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	token, err := privacy.NewToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := privacy.LoadTokenHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := privacy.NewAdminHandler(r.svc, hash, nil)
	id := newInstallationID()
	r.submitDays(t, id, 2)
	body := `{"installation_id":"` + id + `"}`

	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + token, "Bearer " + token + "x"} {
		w := post(t, h, "/v1/admin/export", body, "Authorization", auth)
		if w.Code != http.StatusUnauthorized || errorCode(t, w) != wire.CodeUnauthorized {
			t.Errorf("auth %q: %d", auth, w.Code)
		}
	}
	auth := []string{"Authorization", "Bearer " + token}

	w := post(t, h, "/v1/admin/export", body, auth...)
	if w.Code != http.StatusOK {
		t.Fatalf("export: %d %s", w.Code, w.Body)
	}
	var x privacy.Export
	if err := json.Unmarshal(w.Body.Bytes(), &x); err != nil {
		t.Fatal(err)
	}
	if x.InstallationID != id || len(x.Items) == 0 || x.Erased {
		t.Errorf("export = %+v", x)
	}

	w = post(t, h, "/v1/admin/erase", `{"installation_id":"`+id+`","request_id":"op-7"}`, auth...)
	if w.Code != http.StatusOK {
		t.Fatalf("erase: %d %s", w.Code, w.Body)
	}
	var rec privacy.Request
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Source != privacy.SourceOperator || rec.Removed.Events["tls_connection"] != 4 || strings.Contains(w.Body.String(), id) {
		t.Errorf("receipt %s", w.Body)
	}

	get := func(path string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := get("/v1/admin/erasures/op-7"); w.Code != http.StatusUnauthorized {
		t.Errorf("status without token: %d", w.Code)
	}
	if w := get("/v1/admin/erasures/op-7", auth...); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"complete"`) {
		t.Errorf("status: %d %s", w.Code, w.Body)
	}
	if w := get("/v1/admin/erasures/unknown", auth...); w.Code != http.StatusNotFound {
		t.Errorf("unknown: %d", w.Code)
	}

	// Without a configured token nothing gets in.
	var none [32]byte
	if w := post(t, privacy.NewAdminHandler(r.svc, none, nil), "/v1/admin/export", body, "Authorization", "Bearer "); w.Code != http.StatusUnauthorized {
		t.Errorf("no token configured: %d", w.Code)
	}
}

func TestExportGroupsByManifestItem(t *testing.T) { forEachStore(t, testExportGroupsByManifestItem) }

func testExportGroupsByManifestItem(t *testing.T, r *rig) {
	id, other := newInstallationID(), newInstallationID()
	r.submitDays(t, id, 2)
	r.submitDays(t, other, 1)
	x, err := r.svc.Export(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Submissions) != 2 || x.Submissions[0].Region != provision.RegionEU {
		t.Errorf("submissions %+v", x.Submissions)
	}
	items := map[string]privacy.ExportItem{}
	for _, it := range x.Items {
		items[it.ID] = it
		if it.Description == "" || it.Category == "" || it.RetentionDays == 0 {
			t.Errorf("item %s lacks its description, category or retention", it.ID)
		}
	}
	if n := len(items["installation.id"].Values); n != 6 {
		t.Errorf("installation.id values = %d, want 6", n)
	}
	if n := len(items["tls.certificate"].Values); n != 4 {
		t.Errorf("tls.certificate values = %d, want 4", n)
	}
	if v := items["software.name"].Values; len(v) != 2 || v[0].Value != "Secure Connection" || v[0].EventType != "software" {
		t.Errorf("software.name = %+v", v)
	}
	var buf bytes.Buffer
	if err := privacy.WriteExport(&buf, x); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), r.m.Item("tls.certificate").Description) {
		t.Error("the export does not carry the item descriptions")
	}
}
