package manifest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/provisionhq/provision"
)

// Code is the machine-readable reason of a violation. The values are part
// of the API: agents and operators match on them.
type Code string

// Violation codes.
const (
	CodeUnknownEventType     Code = "unknown_event_type"
	CodeBadEvent             Code = "bad_event"        // missing or malformed id or time
	CodeUndeclaredField      Code = "undeclared_field" // not in the manifest, or not for this event type
	CodeServerOnlyField      Code = "server_only_field"
	CodeMissingField         Code = "missing_field"
	CodeWrongType            Code = "wrong_type"
	CodeOutOfBounds          Code = "out_of_bounds"
	CodeBadEncoding          Code = "bad_encoding" // invalid UTF-8 or control characters
	CodeBadDigest            Code = "bad_digest"
	CodeBadURL               Code = "bad_url"
	CodeBadCertificate       Code = "bad_certificate"
	CodeRegionNotDeclared    Code = "region_not_declared"
	CodeRecipientNotDeclared Code = "recipient_not_declared"
	CodePersonalData         Code = "personal_data" // a text value holds an email address, IP address, user's path or card/phone-like number
)

// Codes lists every violation code, for the documentation tests.
var Codes = []Code{
	CodeUnknownEventType, CodeBadEvent, CodeUndeclaredField, CodeServerOnlyField, CodeMissingField,
	CodeWrongType, CodeOutOfBounds, CodeBadEncoding, CodeBadDigest, CodeBadURL, CodeBadCertificate,
	CodeRegionNotDeclared, CodeRecipientNotDeclared, CodePersonalData,
}

// Violation is one reason an event or batch is not acceptable.
type Violation struct {
	Index   int    `json:"index"` // event index in the batch, -1 for the envelope
	Path    string `json:"path"`  // e.g. fields.os.version, or fields.os.update_packages[3]
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s: %s", v.Path, v.Code, v.Message)
}

// Limits on event envelopes, independent of any manifest.
const (
	MaxEventIDLength  = 64
	MaxFieldsPerEvent = 256
)

// CheckEvent appends to dst every violation of the event for the region and
// returns it. A valid event appends nothing and allocates nothing, so the
// server can call it on every event of every batch.
func (m *Manifest) CheckEvent(dst []Violation, index int, ev *provision.Event, region string) []Violation {
	if !ValidID(ev.ID) {
		dst = append(dst, Violation{index, "id", CodeBadEvent, "event id must be 1 to 64 letters, digits, - or _"})
	}
	if ev.Time.IsZero() {
		dst = append(dst, Violation{index, "time", CodeBadEvent, "event time is missing"})
	}
	et := m.eventTypes[ev.Type]
	if et == nil || et.ID == BatchEvent {
		return append(dst, Violation{index, "type", CodeUnknownEventType, fmt.Sprintf("event type %q is not declared in manifest %s", clip(ev.Type), m.Version)})
	}
	if len(ev.Fields) > MaxFieldsPerEvent {
		return append(dst, Violation{index, "fields", CodeOutOfBounds, fmt.Sprintf("more than %d fields", MaxFieldsPerEvent)})
	}
	regionMask := regionBit(region)
	for id, v := range ev.Fields {
		it := m.items[id]
		switch {
		case it == nil:
			dst = append(dst, Violation{index, "fields." + clip(id), CodeUndeclaredField, "not declared in the manifest"})
			continue
		case it.eventMask&(1<<et.index) == 0:
			dst = append(dst, Violation{index, "fields." + id, CodeUndeclaredField, fmt.Sprintf("not declared for event type %q", et.ID)})
			continue
		case it.Source == SourceServer:
			dst = append(dst, Violation{index, "fields." + id, CodeServerOnlyField, "derived by the server; a device may not send it"})
			continue
		case it.regionMask&regionMask == 0:
			dst = append(dst, Violation{index, "fields." + id, CodeRegionNotDeclared, fmt.Sprintf("not declared for region %q", clip(region))})
			continue
		}
		dst = checkValue(dst, index, "fields.", id, &it.Type, v)
	}
	for _, it := range et.required {
		if _, ok := ev.Fields[it.ID]; !ok {
			dst = append(dst, Violation{index, "fields." + it.ID, CodeMissingField, fmt.Sprintf("required for event type %q", et.ID)})
		}
	}
	return dst
}

// CheckValue appends the violations of one value of the item. The server
// uses it for the values it derives itself, such as the location.
func (m *Manifest) CheckValue(dst []Violation, index int, it *Item, v any) []Violation {
	return checkValue(dst, index, "fields.", it.ID, &it.Type, v)
}

// CheckBatch checks the envelope of a batch and each of its events. The
// envelope violations have index -1; if there are any, the batch as a whole
// is wrong and the events are not examined.
func (m *Manifest) CheckBatch(b *provision.Batch) []Violation {
	var out []Violation
	if !ValidID(b.ID) {
		out = append(out, Violation{-1, "batch_id", CodeBadEvent, "batch id must be 1 to 64 letters, digits, - or _"})
	}
	if regionBit(b.Region) == 0 {
		out = append(out, Violation{-1, "region", CodeRegionNotDeclared, fmt.Sprintf("unknown region %q (known: %s)", clip(b.Region), strings.Join(Regions, ", "))})
	} else if !slices.Contains(m.Terms.Regions, b.Region) {
		out = append(out, Violation{-1, "region", CodeRegionNotDeclared, fmt.Sprintf("manifest %s implements no terms for region %q", m.Version, b.Region)})
	}
	if b.SentAt.IsZero() {
		out = append(out, Violation{-1, "sent_at", CodeBadEvent, "sent_at is missing"})
	}
	for _, it := range m.Items {
		if !m.InEvent(it, BatchEvent) || it.Type.Kind != KindUUID {
			continue
		}
		if !it.ForRegion(b.Region) {
			continue
		}
		out = checkValue(out, -1, "", "installation_id", &it.Type, b.InstallationID)
	}
	if len(out) > 0 {
		return out
	}
	for i := range b.Events {
		out = m.CheckEvent(out, i, &b.Events[i], b.Region)
	}
	return out
}

// CheckRecipient appends a violation for every field of the event that may
// not go to the recipient. Forwarders call it on what they are about to send
// as a last line of defence after selecting fields with ItemsFor.
func (m *Manifest) CheckRecipient(dst []Violation, index int, fields map[string]any, recipient string) []Violation {
	bit := recipientBit(recipient)
	for id := range fields {
		it := m.items[id]
		if it == nil || it.recipientMask&bit == 0 {
			dst = append(dst, Violation{index, "fields." + clip(id), CodeRecipientNotDeclared, fmt.Sprintf("not declared for recipient %q", clip(recipient))})
		}
	}
	return dst
}

// ValidID reports whether s is an id a client may choose (an event's, a
// batch's or an erasure request's): 1 to MaxEventIDLength letters, digits,
// - or _.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxEventIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// clip keeps hostile names short and printable in messages.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// checkValue takes the path in two parts and joins them only to report a
// violation, so that a valid value costs no allocation.
func checkValue(dst []Violation, index int, prefix, name string, t *Type, v any) []Violation {
	bad := func(code Code, format string, args ...any) []Violation {
		return append(dst, Violation{index, prefix + name, code, fmt.Sprintf(format, args...)})
	}
	switch t.Kind {
	case KindString, KindEnum, KindTimestamp, KindURL, KindDigest, KindCertificate, KindUUID:
		s, ok := v.(string)
		if !ok {
			return bad(CodeWrongType, "must be a string, not %s", jsonKind(v))
		}
		return checkString(dst, index, prefix, name, t, s)
	case KindInteger:
		n, ok := Integer(v)
		if !ok {
			return bad(CodeWrongType, "must be a whole number, not %s", jsonKind(v))
		}
		if n < t.Min || n > t.Max {
			return bad(CodeOutOfBounds, "%d is outside %d to %d", n, t.Min, t.Max)
		}
	case KindDuration:
		n, ok := Integer(v)
		if !ok {
			return bad(CodeWrongType, "must be a whole number of milliseconds, not %s", jsonKind(v))
		}
		if n < t.MinDuration.Milliseconds() || n > t.MaxDuration.Milliseconds() {
			return bad(CodeOutOfBounds, "%d ms is outside %s to %s", n, t.MinDuration, t.MaxDuration)
		}
	case KindBoolean:
		if _, ok := v.(bool); !ok {
			return bad(CodeWrongType, "must be true or false, not %s", jsonKind(v))
		}
	case KindList:
		switch l := v.(type) {
		case []any:
			return checkList(dst, index, prefix, name, t, l)
		case []string:
			return checkList(dst, index, prefix, name, t, l)
		default:
			return bad(CodeWrongType, "must be a list, not %s", jsonKind(v))
		}
	}
	return dst
}

// checkList reports the first bad element only: one hostile list must not
// produce thousands of violations.
func checkList[E any](dst []Violation, index int, prefix, name string, t *Type, l []E) []Violation {
	if len(l) > t.MaxItems {
		return append(dst, Violation{index, prefix + name, CodeOutOfBounds, fmt.Sprintf("%d items, at most %d allowed", len(l), t.MaxItems)})
	}
	for i, e := range l {
		n := len(dst)
		dst = checkValue(dst, index, prefix, name, t.Of, e)
		if len(dst) > n {
			dst[n].Path = prefix + name + "[" + strconv.Itoa(i) + "]"
			return dst[:n+1]
		}
	}
	return dst
}

func checkString(dst []Violation, index int, prefix, name string, t *Type, s string) []Violation {
	bad := func(code Code, format string, args ...any) []Violation {
		return append(dst, Violation{index, prefix + name, code, fmt.Sprintf(format, args...)})
	}
	// Bound the bytes before counting characters so hostile input costs
	// little: no character is longer than 4 bytes in UTF-8.
	limit := t.MaxLength
	switch t.Kind {
	case KindCertificate:
		limit = base64.StdEncoding.EncodedLen(t.MaxBytes)
	case KindEnum, KindTimestamp, KindDigest, KindUUID:
		limit = 256
	}
	if len(s) > 4*limit {
		return bad(CodeOutOfBounds, "longer than %d characters", limit)
	}
	if !utf8.ValidString(s) {
		return bad(CodeBadEncoding, "not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return bad(CodeBadEncoding, "contains a control character")
		}
	}
	switch t.Kind {
	case KindString:
		if n := utf8.RuneCountInString(s); n > t.MaxLength {
			return bad(CodeOutOfBounds, "%d characters, at most %d allowed", n, t.MaxLength)
		}
		return checkPersonal(dst, index, prefix, name, t, s)
	case KindEnum:
		if !slices.Contains(t.Values, s) {
			return bad(CodeOutOfBounds, "%q is not one of %s", clip(s), strings.Join(t.Values, ", "))
		}
	case KindTimestamp:
		if !validTimestamp(s) {
			return bad(CodeWrongType, "must be an RFC 3339 date and time")
		}
	case KindUUID:
		if !validUUID4(s) {
			return bad(CodeWrongType, "must be a random UUID (version 4) in canonical lowercase form")
		}
	case KindDigest:
		if len(s) != t.Length {
			return bad(CodeBadDigest, "a %s digest has %d hex characters, not %d", t.Algorithm, t.Length, len(s))
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return bad(CodeBadDigest, "must be lowercase hexadecimal")
			}
		}
	case KindURL:
		n := len(dst)
		if dst = checkURL(dst, index, prefix+name, t, s); len(dst) > n {
			return dst
		}
		return checkPersonal(dst, index, prefix, name, t, s)
	case KindCertificate:
		return checkCertificate(dst, index, prefix+name, t, s)
	}
	return dst
}

// checkPersonal refuses a value with a pattern of personal data in it. The
// message names the pattern, never the value.
func checkPersonal(dst []Violation, index int, prefix, name string, t *Type, s string) []Violation {
	if t.PersonalChecks == 0 {
		return dst
	}
	if found := findPersonal(s, t.PersonalChecks); found != 0 {
		return append(dst, Violation{index, prefix + name, CodePersonalData, personalDataMessage(found)})
	}
	return dst
}

func checkURL(dst []Violation, index int, path string, t *Type, s string) []Violation {
	bad := func(format string, args ...any) []Violation {
		return append(dst, Violation{index, path, CodeBadURL, fmt.Sprintf(format, args...)})
	}
	if utf8.RuneCountInString(s) > t.MaxLength {
		return append(dst, Violation{index, path, CodeOutOfBounds, fmt.Sprintf("longer than %d characters", t.MaxLength)})
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return bad("must be an absolute URL with a host")
	}
	if !slices.Contains(t.Schemes, u.Scheme) {
		return bad("scheme %q is not allowed (allowed: %s)", clip(u.Scheme), strings.Join(t.Schemes, ", "))
	}
	if u.User != nil {
		return bad("must not contain user information")
	}
	if t.OriginOnly && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "") {
		return bad("must hold only the scheme and host")
	}
	return dst
}

// checkCertificate decodes the base64 and checks the outer DER structure of
// an X.509 certificate (a SEQUENCE of TBSCertificate, algorithm and
// signature) without building the certificate, which the server does later
// only where it needs the parsed form.
func checkCertificate(dst []Violation, index int, path string, t *Type, s string) []Violation {
	bad := func(code Code, format string, args ...any) []Violation {
		return append(dst, Violation{index, path, code, fmt.Sprintf(format, args...)})
	}
	n := base64.StdEncoding.DecodedLen(len(s))
	if n > t.MaxBytes+2 {
		return bad(CodeOutOfBounds, "certificate larger than %d bytes", t.MaxBytes)
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return bad(CodeBadCertificate, "not standard base64")
	}
	if len(der) > t.MaxBytes {
		return bad(CodeOutOfBounds, "certificate of %d bytes, at most %d allowed", len(der), t.MaxBytes)
	}
	in := cryptobyte.String(der)
	var cert, tbs, alg cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!cert.SkipASN1(cbasn1.BIT_STRING) || !cert.Empty() {
		return bad(CodeBadCertificate, "not a DER X.509 certificate")
	}
	return dst
}

func validTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func validUUID4(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		case 14:
			if c != '4' {
				return false
			}
		case 19:
			if c != '8' && c != '9' && c != 'a' && c != 'b' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// Integer reads a field value of an integer or duration item: it accepts
// the numeric forms a JSON decoder or a host application produces (ingest
// and every store keep json.Number), and only whole numbers.
func Integer(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	}
	return 0, false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int, int64, int32, uint32:
		return "a number"
	case []any, []string:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
