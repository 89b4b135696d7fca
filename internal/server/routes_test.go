package server

import (
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/routemux"
)

// fullTable returns the route table of a server with every part mounted:
// an operator token, a dashboard token and (its handler only) forwarders.
func fullTable(t *testing.T) routes {
	t.Helper()
	dir := t.TempDir()
	if _, err := privacy.NewToken(dir); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Data: dir, DashboardToken: dashToken}, sqliteBackend(t, dir), testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(); err != nil { // never started: only releases the port
		t.Fatal(err)
	}
	rt := s.routes
	if rt.admin == nil || rt.dashboard == nil {
		t.Fatalf("admin or dashboard not mounted: %+v", rt)
	}
	rt.forward = forwardStatusHandler(nil)
	return rt
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// route splits an http.ServeMux pattern into its method ("" for any) and
// path, and gives the path's OpenAPI form with parameters unnamed: a
// wildcard or a subtree ("/a/") is "{}".
func route(pattern string) (method, path, key string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	norm := wildcard.ReplaceAllString(path, "{}")
	if strings.HasSuffix(norm, "/") && norm != "/" {
		norm += "{}"
	}
	return method, path, method + " " + norm
}

// Every route the server mounts is reached through the top-level mux by
// the part that lists it.
func TestRouteTableIsReachable(t *testing.T) {
	rt := fullTable(t)
	top := rt.mux()
	for _, m := range rt.mounts() {
		l, ok := m.h.(routemux.Lister)
		if !ok {
			continue
		}
		for _, p := range l.Patterns() {
			method, path, _ := route(p)
			if method == "" {
				method = "GET"
			}
			path = wildcard.ReplaceAllString(path, "x")
			if strings.HasSuffix(path, "/") && path != "/" {
				path += "x"
			}
			_, got := top.Handler(httptest.NewRequest(method, path, nil))
			if !slices.Contains(m.patterns, got) {
				t.Errorf("%q is listed by a part mounted at %v, but %s %s reaches %q", p, m.patterns, method, path, got)
			}
		}
	}
}

// api/openapi.yaml documents exactly the routes the server mounts: a route
// missing from it, or a path in it that nothing serves, fails.
func TestOpenAPICoversTheRouteTable(t *testing.T) {
	mounted := map[string]string{} // key → pattern
	paths := map[string][]string{} // path → methods, for the fallbacks
	for _, p := range fullTable(t).table() {
		method, path, key := route(p)
		paths[path] = append(paths[path], method)
		mounted[key] = p
	}
	if len(mounted) < 10 {
		t.Fatalf("only %d routes found: the table is not being read: %v", len(mounted), mounted)
	}
	for key, p := range mounted {
		method, path, _ := route(p)
		if method != "" {
			continue
		}
		// A pattern without a method is a fallback: the 404 for
		// everything, or a 405 beside the route that takes the method.
		if path != "/" && len(paths[path]) < 2 {
			t.Errorf("%q takes any method: give it one so that it can be documented", p)
		}
		delete(mounted, key)
	}

	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for op := range ops {
			switch op {
			case "get", "post", "put", "patch", "delete", "head", "options":
				documented[strings.ToUpper(op)+" "+wildcard.ReplaceAllString(path, "{}")] = true
			}
		}
	}
	for key, p := range mounted {
		if !documented[key] {
			t.Errorf("the server mounts %q, which api/openapi.yaml does not document", p)
		}
	}
	for key := range documented {
		if _, ok := mounted[key]; !ok {
			t.Errorf("api/openapi.yaml documents %q, which the server does not mount", key)
		}
	}
}
