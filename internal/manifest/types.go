package manifest

import (
	"fmt"
	"strings"
	"time"
)

// Type kinds. Each kind fixes how a value travels in JSON and which bounds
// the manifest must give for it.
const (
	KindString      = "string"      // JSON string, at most MaxLength characters
	KindInteger     = "integer"     // JSON integer in [Min, Max]
	KindBoolean     = "boolean"     // JSON true or false
	KindEnum        = "enum"        // JSON string, one of Values
	KindDuration    = "duration"    // JSON integer of milliseconds in [MinDuration, MaxDuration]
	KindTimestamp   = "timestamp"   // JSON string in RFC 3339 form
	KindURL         = "url"         // JSON string; absolute URL with one of Schemes
	KindDigest      = "digest"      // JSON string; lowercase hex of Algorithm's output
	KindCertificate = "certificate" // JSON string; standard base64 of a DER X.509 certificate
	KindUUID        = "uuid"        // JSON string; a random (version 4) UUID
	KindList        = "list"        // JSON array of at most MaxItems values of type Of
)

// Type is an item's type with its bounds.
type Type struct {
	Kind        string
	MaxLength   int           // string, url
	Min, Max    int64         // integer
	Values      []string      // enum
	MinDuration time.Duration // duration
	MaxDuration time.Duration // duration
	Schemes     []string      // url
	OriginOnly  bool          // url: nothing but scheme and host (and port)
	Algorithm   string        // digest
	Length      int           // digest: hex characters
	MaxBytes    int           // certificate: DER size
	Of          *Type         // list
	MaxItems    int           // list

	// PersonalChecks are the patterns of personal data a string or URL
	// value is refused for (see personal.go).
	PersonalChecks PersonalChecks
}

// digestLengths are the hex lengths of the digest algorithms a manifest may name.
var digestLengths = map[string]int{
	"sha1":   40,
	"sha256": 64,
	"sha384": 96,
	"sha512": 128,
}

// Limits on bounds, so a manifest cannot declare what no decoder should accept.
const (
	maxStringLength = 1 << 16
	maxCertBytes    = 1 << 16
	maxListItems    = 10000
	maxEnumValues   = 1000
)

// String describes the type in plain words for the disclosure.
func (t *Type) String() string {
	switch t.Kind {
	case KindString:
		return fmt.Sprintf("text of at most %d characters", t.MaxLength)
	case KindInteger:
		return fmt.Sprintf("whole number from %d to %d", t.Min, t.Max)
	case KindBoolean:
		return "yes or no"
	case KindEnum:
		return "one of: " + strings.Join(t.Values, ", ")
	case KindDuration:
		return fmt.Sprintf("duration from %s to %s (milliseconds)", t.MinDuration, t.MaxDuration)
	case KindTimestamp:
		return "date and time (RFC 3339)"
	case KindURL:
		s := fmt.Sprintf("web address (%s) of at most %d characters", strings.Join(t.Schemes, ", "), t.MaxLength)
		if t.OriginOnly {
			s += ", scheme and host only"
		}
		return s
	case KindDigest:
		return fmt.Sprintf("%s digest (%d hexadecimal characters)", strings.ToUpper(t.Algorithm[:3])+t.Algorithm[3:], t.Length)
	case KindCertificate:
		return fmt.Sprintf("X.509 certificate (DER, at most %d bytes, base64)", t.MaxBytes)
	case KindUUID:
		return "random identifier (UUID version 4)"
	case KindList:
		return fmt.Sprintf("list of at most %d × %s", t.MaxItems, t.Of.String())
	}
	return t.Kind
}
