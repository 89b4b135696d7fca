// Package web serves the operator dashboard (server-rendered HTML, assets
// embedded, no script needed) and the reports API under /v1/reports, both
// behind the operator token.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
)

// Config is what the dashboard needs.
type Config struct {
	Token           string       // operator token; required, at least 16 characters
	Rollups         rollup.Store // where the figures come from
	K               int          // minimum installations per figure; 0 means report.DefaultK
	Epsilon         float64      // noise for the threat report; 0 for none
	ContributionCap int64
	PublicRoots     *x509.CertPool // nil means the system's roots
	// CacheTTL is how long a built page section is reused; rollups move
	// on a schedule, so a page a minute old is as good as a fresh one.
	// 0 means one minute; negative disables the cache.
	CacheTTL time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case len(c.Token) < 16:
		return errors.New("web: Token must have at least 16 characters")
	case c.Rollups == nil:
		return errors.New("web: Rollups is required")
	case c.Epsilon < 0:
		return errors.New("web: Epsilon must not be negative")
	}
	return nil
}

//go:embed assets templates
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

const sessionCookie = "provision_session"

type server struct {
	cfg     Config
	session string // the cookie value a logged-in operator holds
	log     *slog.Logger
	cache   *sectionCache
	span    dataSpan
	snap    atomic.Pointer[snapshot] // nil until the first Warm
}

// Dashboard serves /dashboard and /v1/reports.
type Dashboard struct {
	s *server
	h http.Handler
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.h.ServeHTTP(w, r) }

// Warm materialises the report views (the default period — the days the
// data covers, at most the last 30 — of both reports,
// and the quality report of each version): call it after each rollup
// update, so that pages and /v1/reports answer them from memory until the
// next. The views it replaces stay served until the new ones are built.
func (d *Dashboard) Warm(ctx context.Context) error {
	d.s.span.forget()
	snap, err := d.s.materialise(ctx)
	if err != nil {
		return err
	}
	d.s.snap.Store(snap)
	return nil
}

// New returns the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mac := hmac.New(sha256.New, []byte(cfg.Token))
	mac.Write([]byte("provision dashboard session v1"))
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = time.Minute
	}
	s := &server{cfg: cfg, session: hex.EncodeToString(mac.Sum(nil)), log: cfg.Logger, cache: newSectionCache(cfg.CacheTTL, cfg.Now)}
	return &Dashboard{s: s, h: s.routes()}, nil
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /dashboard/assets/", http.StripPrefix("/dashboard/assets/", noListing(http.FileServerFS(assets))))
	mux.HandleFunc("GET /dashboard/assets/report.css", handleReportCSS)
	mux.HandleFunc("GET /dashboard/login", s.handleLoginForm)
	mux.HandleFunc("POST /dashboard/login", s.handleLogin)
	mux.HandleFunc("POST /dashboard/logout", s.handleLogout)
	mux.Handle("GET /dashboard", s.requireSession(http.RedirectHandler("/dashboard/quality", http.StatusSeeOther)))
	mux.Handle("GET /dashboard/{kind}", s.requireSession(http.HandlerFunc(s.handlePage)))
	mux.Handle("GET /v1/reports/{kind}", s.requireBearer(http.HandlerFunc(s.handleReportAPI)))
	return securityHeaders(mux)
}

// noListing serves files but never a directory's listing.
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reportCSS is the reports' own stylesheet, the one their standalone HTML
// files carry inline.
var reportCSS = report.Stylesheet()

func handleReportCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = io.WriteString(w, reportCSS)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *server) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || !equal(c.Value, s.session) {
			http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *server) requireBearer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !equal(tok, s.cfg.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="provision"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid operator bearer token is required")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

type loginPage struct {
	Next  string
	Error string
}

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/dashboard") || strings.HasPrefix(next, "//") {
		return "/dashboard/quality"
	}
	return next
}

func (s *server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login.html", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// maxForm bounds a login form.
const maxForm = 4096

func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !equal(r.PostForm.Get("token"), s.cfg.Token) {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", loginPage{Next: next, Error: "That token is not right."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.session, Path: "/dashboard", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/dashboard", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
}

func (s *server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render", "page", name, "err", err)
	}
}

// defaultDays is the longest default period.
const defaultDays = 30

// spanTTL is how long the data's first and last day are reused.
const spanTTL = time.Minute

// options reads the period and filter of a request. The default period is
// the days the data covers, at most the last 30 of them: a week of data
// fills the charts rather than a quarter of them.
func (s *server) options(ctx context.Context, q url.Values) report.Options {
	to, from := q.Get("to"), q.Get("from")
	if to == "" || from == "" {
		first, last := s.dataDays(ctx)
		if to == "" {
			to = last
		}
		if from == "" {
			from = first
			if t, err := time.Parse(time.DateOnly, to); err == nil {
				if earliest := t.AddDate(0, 0, 1-defaultDays).Format(time.DateOnly); from < earliest || from > to {
					from = earliest
				}
			}
		}
	}
	return report.Options{From: from, To: to, K: s.cfg.K, ContributionCap: s.cfg.ContributionCap,
		PublicRoots: s.cfg.PublicRoots, Version: q.Get("version")}
}

func (s *server) build(ctx context.Context, kind string, o report.Options) (report.Document, error) {
	switch kind {
	case "quality":
		return report.BuildQuality(ctx, s.cfg.Rollups, o)
	case "threats":
		o.Epsilon = s.cfg.Epsilon
		o.Version = ""
		return report.BuildThreats(ctx, s.cfg.Rollups, o)
	}
	return nil, errUnknownReport
}

var errUnknownReport = errors.New("unknown report")

type dashboardPage struct {
	Kind     string
	From, To string
	Version  string
	Versions []string
	Error    string
	Section  template.HTML
}

func (s *server) handlePage(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if kind != "quality" && kind != "threats" {
		http.NotFound(w, r)
		return
	}
	o := s.options(r.Context(), r.URL.Query())
	page := dashboardPage{Kind: kind, From: o.From, To: o.To, Version: o.Version}
	key := sectionKey(kind, o)
	built, ok := s.snap.Load().section(key)
	var err error
	if !ok {
		built, err = s.cache.get(key, func() (cached, error) {
			return s.buildSection(r.Context(), kind, o)
		})
	}
	section := built.html
	page.Versions = built.versions
	switch {
	case errors.Is(err, report.ErrBadOptions):
		w.WriteHeader(http.StatusBadRequest)
		page.Error = err.Error()
	case err != nil:
		s.log.Error("dashboard report", "kind", kind, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		page.Error = "The report could not be built; see the server log."
	default:
		page.Section = section
	}
	s.render(w, "dashboard.html", page)
}

func sectionKey(kind string, o report.Options) string {
	if kind == "threats" {
		o.Version = "" // the threat report has no version filter
	}
	return strings.Join([]string{kind, o.From, o.To, o.Version}, "\x00")
}

func (s *server) buildSection(ctx context.Context, kind string, o report.Options) (cached, error) {
	doc, err := s.build(ctx, kind, o)
	if err != nil {
		return cached{}, err
	}
	return sectionOf(doc)
}

func sectionOf(doc report.Document) (cached, error) {
	var c cached
	if q, ok := doc.(*report.Quality); ok {
		c.versions = q.Versions
	}
	var err error
	c.html, err = report.SectionHTML(doc)
	return c, err
}

func (s *server) handleReportAPI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if !slices.Contains(report.Formats, format) {
		writeError(w, http.StatusBadRequest, "bad_format", fmt.Sprintf("format must be one of %s", strings.Join(report.Formats, ", ")))
		return
	}
	kind, o := r.PathValue("kind"), s.options(r.Context(), q)
	doc, ok := s.snap.Load().doc(sectionKey(kind, o))
	var err error
	if !ok {
		doc, err = s.build(r.Context(), kind, o)
	}
	switch {
	case errors.Is(err, errUnknownReport):
		writeError(w, http.StatusNotFound, "unknown_report", "reports are quality and threats")
		return
	case errors.Is(err, report.ErrBadOptions):
		writeError(w, http.StatusBadRequest, "bad_period", err.Error())
		return
	case err != nil:
		s.log.Error("report api", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the report could not be built now")
		return
	}
	w.Header().Set("Content-Type", report.ContentType(format))
	if err := report.Write(w, doc, format); err != nil {
		s.log.Error("report api write", "err", err)
	}
}

// dataSpan remembers the first and last day the rollups cover, for the
// default period. It moves by a day at most, so it is found again after
// spanTTL even when the section cache is off, and at once after Warm.
type dataSpan struct {
	mu          sync.Mutex
	first, last string
	at          time.Time
}

func (d *dataSpan) forget() {
	d.mu.Lock()
	d.at = time.Time{}
	d.mu.Unlock()
}

// dataDays returns the first and last day with active installations, or
// the 30 days up to today when there is no data (or it cannot be read: the
// page then shows the store's error itself). Days after today do not count.
func (s *server) dataDays(ctx context.Context) (first, last string) {
	now := s.cfg.Now().UTC()
	today := now.Format(time.DateOnly)
	s.span.mu.Lock()
	defer s.span.mu.Unlock()
	if !s.span.at.IsZero() && now.Sub(s.span.at) < spanTTL {
		return s.span.first, s.span.last
	}
	first, last = now.AddDate(0, 0, 1-defaultDays).Format(time.DateOnly), today
	cells, err := s.cfg.Rollups.Cells(ctx, rollup.Query{Views: []string{rollup.ViewActive}, To: today})
	if err != nil {
		s.log.Warn("dashboard: the data's period", "err", err)
		return first, last
	}
	if len(cells) > 0 {
		first, last = cells[0].Key.Day, cells[len(cells)-1].Key.Day
	}
	s.span.first, s.span.last, s.span.at = first, last, now
	return first, last
}
