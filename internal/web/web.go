// Package web serves the operator dashboard (server-rendered HTML, assets
// embedded, no script needed) and the reports API under /v1/reports, both
// behind the operator token.
package web

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/routemux"
	"github.com/provisionhq/provision/internal/throttle"
	"github.com/provisionhq/provision/internal/wire"
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

	// IdleTimeout and AbsoluteTimeout bound a dashboard session; 0 means
	// DefaultIdleTimeout and DefaultAbsoluteTimeout.
	IdleTimeout, AbsoluteTimeout time.Duration
	// ClientAddr finds the client address that login attempts are
	// throttled by (the server's trusted-proxy rule); nil means the
	// connection's peer.
	ClientAddr func(*http.Request) (netip.Addr, bool)
	// PerClient and Global bound failed logins and bearer tokens; zero
	// means throttle.DefaultPerClient and throttle.DefaultGlobal.
	PerClient, Global throttle.Rule
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

// The session cookie's names: over TLS the __Host- prefix binds it to
// this host and path / and requires Secure; over plain HTTP (only on
// loopback or behind a terminator) a browser would refuse that prefix.
const (
	sessionCookieTLS   = "__Host-provision_session"
	sessionCookiePlain = "provision_session"
)

func sessionCookie(r *http.Request) string {
	if r.TLS != nil {
		return sessionCookieTLS
	}
	return sessionCookiePlain
}

type server struct {
	cfg      Config
	sessions *sessions
	throttle *throttle.Limiter
	log      *slog.Logger
	cache    *sectionCache
	span     dataSpan
	snap     atomic.Pointer[snapshot] // nil until the first Warm
}

// Dashboard serves /dashboard and /v1/reports.
type Dashboard struct {
	s        *server
	h        http.Handler
	patterns []string
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.h.ServeHTTP(w, r) }

// Patterns lists the routes served, as http.ServeMux patterns.
func (d *Dashboard) Patterns() []string { return slices.Clone(d.patterns) }

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
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if cfg.ClientAddr == nil {
		cfg.ClientAddr = peerAddr
	}
	if cfg.PerClient == (throttle.Rule{}) {
		cfg.PerClient = throttle.DefaultPerClient
	}
	if cfg.Global == (throttle.Rule{}) {
		cfg.Global = throttle.DefaultGlobal
	}
	s := &server{cfg: cfg, log: cfg.Logger, cache: newSectionCache(cfg.CacheTTL, cfg.Now),
		sessions: newSessions(cfg.IdleTimeout, cfg.AbsoluteTimeout, cfg.Now),
		throttle: throttle.New(cfg.PerClient, cfg.Global, cfg.Now)}
	mux := s.routes()
	return &Dashboard{s: s, h: securityHeaders(mux), patterns: mux.Patterns()}, nil
}

func (s *server) routes() *routemux.Mux {
	mux := routemux.New()
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /dashboard/assets/", http.StripPrefix("/dashboard/assets/", noListing(http.FileServerFS(assets))))
	mux.HandleFunc("GET /dashboard/assets/report.css", handleReportCSS)
	mux.HandleFunc("GET /dashboard/login", s.handleLoginForm)
	// SameSite=Strict keeps the session cookie off cross-site requests;
	// the cross-origin check (Sec-Fetch-Site, else Origin against Host)
	// also refuses a cross-site login form, which a cookie rule cannot.
	csrf := http.NewCrossOriginProtection()
	mux.Handle("POST /dashboard/login", csrf.Handler(http.HandlerFunc(s.handleLogin)))
	mux.Handle("POST /dashboard/logout", csrf.Handler(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET /dashboard", s.requireSession(http.RedirectHandler("/dashboard/quality", http.StatusSeeOther)))
	mux.Handle("GET /dashboard/{kind}", s.requireSession(http.HandlerFunc(s.handlePage)))
	mux.Handle("GET /v1/reports/{kind}", s.requireBearer(http.HandlerFunc(s.handleReportAPI)))
	return mux
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
		c, err := r.Cookie(sessionCookie(r))
		if err != nil || !s.sessions.valid(c.Value) {
			http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *server) requireBearer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refund, wait := s.throttle.Take(s.cfg.ClientAddr(r))
		if wait > 0 {
			throttle.SetRetryAfter(w, wait)
			writeError(w, http.StatusTooManyRequests, wire.CodeTooManyAttempts, "too many failed attempts; wait and try again")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !equal(tok, s.cfg.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="provision"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid operator bearer token is required")
			return
		}
		refund()
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

const defaultNext = "/dashboard/quality"

// safeNext returns next when it is a local dashboard path, else the
// default page. A browser reads "/\\host" and "//host" as another site and
// resolves "..": anything but a clean absolute path under /dashboard, with
// no scheme, host, backslash or control character, is refused rather than
// repaired.
func safeNext(next string) string {
	if next == "" || len(next) > 1024 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return defaultNext
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return defaultNext
	}
	p := u.Path // decoded: %2e%2e and %5c are seen for what they are
	if p != path.Clean(p) || strings.ContainsAny(p, "\\") || (p != "/dashboard" && !strings.HasPrefix(p, "/dashboard/")) {
		return defaultNext
	}
	out := u.EscapedPath()
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
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
	refund, wait := s.throttle.Take(s.cfg.ClientAddr(r))
	if wait > 0 {
		throttle.SetRetryAfter(w, wait)
		w.WriteHeader(http.StatusTooManyRequests)
		s.render(w, "login.html", loginPage{Next: next, Error: "Too many attempts; wait a minute and try again."})
		return
	}
	if !equal(r.PostForm.Get("token"), s.cfg.Token) {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", loginPage{Next: next, Error: "That token is not right."})
		return
	}
	refund()
	// A login never reuses a session the browser brought along.
	if c, err := r.Cookie(sessionCookie(r)); err == nil {
		s.sessions.revoke(c.Value)
	}
	id, err := s.sessions.create()
	if err != nil {
		s.log.Error("session", "err", err)
		http.Error(w, "no session could be made", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, s.cookie(r, id, int(s.cfg.AbsoluteTimeout/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie(r), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie(r)); err == nil {
		s.sessions.revoke(c.Value)
	}
	http.SetCookie(w, s.cookie(r, "", -1))
	http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
}

// peerAddr is the connection's peer address.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
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
	f, l, err := s.activeDays(ctx, today)
	if err != nil {
		s.log.Warn("dashboard: the data's period", "err", err)
		return first, last
	}
	if f != "" {
		first, last = f, l
	}
	s.span.first, s.span.last, s.span.at = first, last, now
	return first, last
}

// activeDays is the first and last day of active cells up to today; a
// store that cannot tell without reading them is read whole.
func (s *server) activeDays(ctx context.Context, today string) (first, last string, err error) {
	if ds, ok := s.cfg.Rollups.(rollup.DaySpanner); ok {
		return ds.DaySpan(ctx, rollup.ViewActive, today)
	}
	cells, err := s.cfg.Rollups.Cells(ctx, rollup.Query{Views: []string{rollup.ViewActive}, To: today})
	if err != nil || len(cells) == 0 {
		return "", "", err
	}
	return cells[0].Key.Day, cells[len(cells)-1].Key.Day, nil
}
