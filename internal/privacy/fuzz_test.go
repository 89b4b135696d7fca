package privacy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/wire"
)

// FuzzDeletionRequest feeds arbitrary bodies to the strict decoder and to
// the deletion handler: neither may panic, and the handler answers only
// with the documented statuses.
func FuzzDeletionRequest(f *testing.F) {
	f.Add([]byte(`{"installation_id":"3b241101-e2bb-4255-8caf-4136c566a962","request_id":"r-1"}`))
	f.Add([]byte(`{"installation_id":"","request_id":""}`))
	f.Add([]byte(`{"installation_id":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"installation_id":"x","request_id":"y"}{}`))
	r := newRig(f)
	h := privacy.NewDeletionHandler(r.svc)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.DeletionRequest
		_ = privacy.DecodeDeletionJSON(body, &req)
		w := httptest.NewRecorder()
		hr := httptest.NewRequest(http.MethodPost, "/v1/deletion", strings.NewReader(string(body)))
		h.ServeHTTP(w, hr)
		switch w.Code {
		case http.StatusAccepted, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
