package routemux_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/provisionhq/provision/internal/routemux"
)

func TestPatternsAreThoseServed(t *testing.T) {
	m := routemux.New()
	m.HandleFunc("GET /a/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	m.Handle("POST /b", http.NotFoundHandler())
	if got := m.Patterns(); !slices.Equal(got, []string{"GET /a/{id}", "POST /b"}) {
		t.Errorf("Patterns() = %q", got)
	}
	m.Patterns()[0] = "changed"
	if m.Patterns()[0] != "GET /a/{id}" {
		t.Error("Patterns() shares its slice")
	}
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/a/1", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("GET /a/1 = %d", rec.Code)
	}
}
