package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/wire"
)

// Measurement Protocol endpoints. region1 keeps collection in the EU.
const (
	GA4EndpointGlobal  = "https://www.google-analytics.com/mp/collect"
	GA4EndpointRegion1 = "https://region1.google-analytics.com/mp/collect"
)

// ga4Region1Regions are the regions whose counts go to the EU endpoint
// unless one endpoint is configured for all: the EU's, and the UK's, whose
// GDPR is the EU's and which treats the EU as adequate.
var ga4Region1Regions = map[string]bool{"eu": true, "uk": true}

// The Measurement Protocol's documented limits. Google drops what exceeds
// them without an error (the collection endpoint always answers 2xx), so
// the forwarder must never send it.
const (
	GA4MaxEventsPerRequest = 25
	GA4MaxParamsPerEvent   = 25
	GA4MaxUserProperties   = 25
	GA4MaxNameLength       = 40 // event and parameter names
	GA4MaxParamValueLength = 100
	GA4MaxUserPropName     = 24
	GA4MaxUserPropValue    = 36
	GA4MaxBodyBytes        = 130_000 // "smaller than 130kB"; the decimal reading is the stricter one
	GA4MaxBackdate         = 72 * time.Hour
)

// ga4Backdate is how old an event may be when the forwarder builds the
// request: an hour short of the limit, so it is still within it on arrival.
const ga4Backdate = GA4MaxBackdate - time.Hour

// Reserved names that the Measurement Protocol refuses or treats specially.
var (
	GA4ReservedEventNames = []string{
		"ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
		"adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_remove",
		"app_store_refund", "app_store_subscription_cancel", "app_store_subscription_convert",
		"app_store_subscription_renew", "app_update", "app_upgrade", "click", "dynamic_link_app_open",
		"dynamic_link_app_update", "dynamic_link_first_open", "error", "file_download", "firebase_campaign",
		"firebase_in_app_message_action", "firebase_in_app_message_dismiss", "firebase_in_app_message_impression",
		"first_open", "first_visit", "form_start", "form_submit", "in_app_purchase", "notification_dismiss",
		"notification_foreground", "notification_open", "notification_receive", "os_update", "page_view",
		"screen_view", "scroll", "session_start", "session_start_with_rollout", "user_engagement",
		"video_complete", "video_progress", "video_start", "view_search_results",
	}
	GA4ReservedParamNames    = []string{"engagement_time_msec", "gclid", "session_id", "session_number"}
	GA4ReservedParamPrefixes = []string{"_", "firebase_", "ga_", "google_", "gtag."}
	GA4ReservedUserProps     = []string{"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id", "first_open_after_install"}
	GA4ReservedUserPrefixes  = []string{"_", "firebase_", "ga_", "google_"}
)

// GA4Config configures the Google Analytics 4 forwarder. The api secret
// lives only in the server's configuration; no agent ever holds it.
type GA4Config struct {
	MeasurementID string
	APISecret     string
	// Endpoint is one collection URL for every count; when empty each
	// count goes to the endpoint of its installation's region:
	// GA4EndpointRegion1 for eu and uk, GA4EndpointGlobal for the others.
	Endpoint  string
	EventName string // "user_count" when empty
	Client    *http.Client
	Now       func() time.Time
}

// GA4 sends each count as one Measurement Protocol request with the
// installation id as client_id and one event carrying the permitted fields
// as parameters.
type GA4 struct {
	cfg       GA4Config
	global    ga4URLs // every count when an endpoint is configured
	eu        ga4URLs // eu and uk counts when none is
	perRegion bool
}

// ga4URLs are the collection and validation URLs of one endpoint, with
// the measurement id and api secret.
type ga4URLs struct{ collect, validate string }

// NewGA4 checks the configuration.
func NewGA4(cfg GA4Config) (*GA4, error) {
	if cfg.MeasurementID == "" || cfg.APISecret == "" {
		return nil, errors.New("google_analytics: measurement_id and api_secret are required")
	}
	g := &GA4{perRegion: cfg.Endpoint == ""}
	var err error
	if g.perRegion {
		g.global, _ = ga4Endpoints(GA4EndpointGlobal, cfg)
		g.eu, _ = ga4Endpoints(GA4EndpointRegion1, cfg)
	} else if g.global, err = ga4Endpoints(cfg.Endpoint, cfg); err != nil {
		return nil, err
	}
	if cfg.EventName == "" {
		cfg.EventName = EventType
	}
	if err := checkGA4Name(cfg.EventName, GA4MaxNameLength, nil, GA4ReservedEventNames); err != nil {
		return nil, fmt.Errorf("google_analytics: event name: %w", err)
	}
	if cfg.Client == nil {
		cfg.Client, err = NewHTTPClient("", 30*time.Second)
		if err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g.cfg = cfg
	return g, nil
}

func ga4Endpoints(endpoint string, cfg GA4Config) (ga4URLs, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return ga4URLs{}, fmt.Errorf("google_analytics: endpoint %q must be an https URL without a query", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/mp/collect") {
		return ga4URLs{}, fmt.Errorf("google_analytics: endpoint %q must end in /mp/collect", endpoint)
	}
	q := url.Values{"measurement_id": {cfg.MeasurementID}, "api_secret": {cfg.APISecret}}.Encode()
	debug := *u
	debug.Path = strings.TrimSuffix(u.Path, "/mp/collect") + "/debug/mp/collect"
	return ga4URLs{collect: u.String() + "?" + q, validate: debug.String() + "?" + q}, nil
}

func (g *GA4) urls(region string) ga4URLs {
	if g.perRegion && ga4Region1Regions[region] {
		return g.eu
	}
	return g.global
}

// Endpoint is the collection URL, without the query that holds the api
// secret, that a count of an installation in the region goes to.
func (g *GA4) Endpoint(region string) string {
	u, _, _ := strings.Cut(g.urls(region).collect, "?")
	return u
}

// MaxAge is how old a count's day of use may be when it is built: Google
// Analytics accepts timestamp_micros up to 72 hours back, and an hour is
// left for the request to arrive. Older counts are not sent (the
// forwarder counts them as too_old).
func (g *GA4) MaxAge() time.Duration { return ga4Backdate }

// Recipient implements Sender.
func (g *GA4) Recipient() string { return provision.RecipientGoogleAnalytics }

// MPRequest is the Measurement Protocol JSON body.
type MPRequest struct {
	ClientID        string                    `json:"client_id"`
	TimestampMicros int64                     `json:"timestamp_micros,omitempty"`
	UserProperties  map[string]MPUserProperty `json:"user_properties,omitempty"`
	Events          []MPEvent                 `json:"events"`
}

// MPUserProperty is one user property value.
type MPUserProperty struct {
	Value any `json:"value"`
}

// MPEvent is one Measurement Protocol event.
type MPEvent struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
}

// errGA4 marks counts that can never be sent to Google Analytics as they are.
var errGA4 = errors.New("google_analytics")

// Body builds the request body for the count, applying the rules for values
// that do not fit (see ParamName and fitParams). The error is permanent.
func (g *GA4) Body(c *Count) ([]byte, error) {
	clientID, ok := c.Fields[InstallationItem].(string)
	if !ok || clientID == "" {
		return nil, fmt.Errorf("%w: %s is not declared for google_analytics in this region; without it there is no client_id", errGA4, InstallationItem)
	}
	params, err := ga4Params(c.Fields)
	if err != nil {
		return nil, err
	}
	req := MPRequest{ClientID: clientID, Events: []MPEvent{{Name: g.cfg.EventName, Params: params}}}
	now := g.cfg.Now()
	if !c.Time.IsZero() {
		t := c.Time
		if t.After(now) {
			t = now
		}
		if now.Sub(t) > ga4Backdate {
			return nil, fmt.Errorf("%w: the count of %s is older than Google Analytics accepts (%s)", errGA4, c.Day, GA4MaxBackdate)
		}
		req.TimestampMicros = t.UnixMicro()
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errGA4, err)
	}
	if len(body) >= GA4MaxBodyBytes {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds the %d-byte limit", errGA4, len(body), GA4MaxBodyBytes)
	}
	return body, nil
}

// ParamName maps a manifest item id to a parameter name: dots become
// underscores (software.version → software_version).
func ParamName(itemID string) string { return strings.ReplaceAll(itemID, ".", "_") }

// ga4Params turns the permitted fields (all but installation.id, which is
// the client_id) into event parameters. The rules, which docs/forwarding.md
// repeats:
//   - a string of at most 100 characters is sent as it is;
//   - a longer string is sent as its first 83 characters, "~" and the first
//     16 hex digits of the SHA-256 of the whole value, so a clipped value is
//     recognisable and never passes for the full one;
//   - a list L becomes three parameters: L_count (its length), L_latest (its
//     last element, fitted as above; agents list newest last) and L_sha256
//     (hex SHA-256 of its elements sorted and joined by newlines, so equal
//     sets compare equal however long they are);
//   - numbers and booleans are sent as they are;
//   - anything else, an invalid name or more than 25 parameters is refused:
//     the count goes to the dead letters rather than out half-made.
func ga4Params(fields map[string]any) (map[string]any, error) {
	params := make(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		if id == InstallationItem {
			continue
		}
		name := ParamName(id)
		switch v := fields[id].(type) {
		case string:
			params[name] = fitValue(v, GA4MaxParamValueLength)
		case bool, float64, float32, int, int64, int32, json.Number:
			params[name] = v
		case []any:
			strs := make([]string, 0, len(v))
			for _, e := range v {
				strs = append(strs, fmt.Sprint(e))
			}
			listParams(params, name, strs)
		case []string:
			listParams(params, name, v)
		default:
			return nil, fmt.Errorf("%w: field %s has a value of type %T that has no parameter form", errGA4, id, v)
		}
	}
	if len(params) > GA4MaxParamsPerEvent {
		return nil, fmt.Errorf("%w: %d parameters exceed the limit of %d per event", errGA4, len(params), GA4MaxParamsPerEvent)
	}
	for name := range params {
		if err := checkGA4Name(name, GA4MaxNameLength, GA4ReservedParamPrefixes, GA4ReservedParamNames); err != nil {
			return nil, fmt.Errorf("%w: parameter: %v", errGA4, err)
		}
	}
	return params, nil
}

func listParams(params map[string]any, name string, l []string) {
	params[name+"_count"] = len(l)
	if len(l) > 0 {
		params[name+"_latest"] = fitValue(l[len(l)-1], GA4MaxParamValueLength)
	}
	sorted := slices.Sorted(slices.Values(l))
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	params[name+"_sha256"] = hex.EncodeToString(sum[:])
}

// fitValue returns s, or a marked, digest-tagged prefix when s is longer
// than limit characters.
func fitValue(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	tag := "~" + hex.EncodeToString(sum[:8])
	keep := limit - len(tag)
	n := 0
	for i := range s {
		if n == keep {
			return s[:i] + tag
		}
		n++
	}
	return s + tag
}

// checkGA4Name applies the naming rule: letters, digits and underscores,
// starting with a letter, at most limit characters, no reserved name or prefix.
func checkGA4Name(name string, limit int, prefixes, reserved []string) error {
	if name == "" || len(name) > limit {
		return fmt.Errorf("name %q must have 1 to %d characters", name, limit)
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("name %q uses the reserved prefix %q", name, p)
		}
	}
	if slices.Contains(reserved, name) {
		return fmt.Errorf("name %q is reserved", name)
	}
	for i, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("name %q must start with a letter", name)
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' {
			return fmt.Errorf("name %q may hold only letters, digits and underscores", name)
		}
	}
	return nil
}

// Send implements Sender.
func (g *GA4) Send(ctx context.Context, c *Count) error {
	body, err := g.Body(c)
	if err != nil {
		return err
	}
	resp, err := g.post(ctx, g.urls(c.Region).collect, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return classify(resp, g.cfg.Now())
}

func (g *GA4) post(ctx context.Context, endpoint string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errGA4, scrubURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		// The URL holds the api secret: never let it into an error or a log.
		return nil, wire.Transient(scrubURL(err))
	}
	return resp, nil
}

// ValidationMessage is one finding of the Measurement Protocol validation server.
type ValidationMessage struct {
	FieldPath      string `json:"fieldPath"`
	Description    string `json:"description"`
	ValidationCode string `json:"validationCode"`
}

// maxValidationResponse bounds what Check reads from the validation server.
const maxValidationResponse = 1 << 20

// Check sends the count to the validation endpoint (/debug/mp/collect),
// which checks it without recording it, and returns its findings.
func (g *GA4) Check(ctx context.Context, c *Count) ([]ValidationMessage, error) {
	body, err := g.Body(c)
	if err != nil {
		return nil, err
	}
	resp, err := g.post(ctx, g.urls(c.Region).validate, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := classify(resp, g.cfg.Now()); err != nil {
		return nil, err
	}
	return DecodeValidation(io.LimitReader(resp.Body, maxValidationResponse+1))
}

// DecodeValidation reads a validation server answer, at most 1 MiB.
func DecodeValidation(r io.Reader) ([]ValidationMessage, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxValidationResponse+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxValidationResponse {
		return nil, fmt.Errorf("validation answer larger than %d bytes", maxValidationResponse)
	}
	var out struct {
		ValidationMessages []ValidationMessage `json:"validationMessages"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("validation answer: %w", err)
	}
	return out.ValidationMessages, nil
}

// scrubURL drops the URL (and with it the api secret) from a client error.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
