package ingest

import (
	"strings"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

// rejectionText is the message of each rejection code. An answer is stored
// for resends and read back by the agent into its sent log, so it must not
// quote what the client sent: an e-mail address typed into the wrong field
// would otherwise outlive the erasure of everything else. The messages are
// therefore fixed per code, and the first answer is built from the same
// codes and paths as the stored one: it is the stored one.
var rejectionText = map[string]string{
	wire.RejectMalformed:                      "the event is not an object of the documented shape",
	wire.RejectBadTime:                        "event time is outside the accepted window",
	wire.RejectDuplicateEvent:                 "event id appears earlier in the batch",
	string(manifest.CodeUnknownEventType):     "event type is not declared in the manifest",
	string(manifest.CodeBadEvent):             "event id or time is missing or malformed",
	string(manifest.CodeUndeclaredField):      "field is not declared in the manifest for this event type",
	string(manifest.CodeServerOnlyField):      "field is derived by the server; a device may not send it",
	string(manifest.CodeMissingField):         "a field required for this event type is missing",
	string(manifest.CodeWrongType):            "value does not have the declared type",
	string(manifest.CodeOutOfBounds):          "value is outside the declared bounds",
	string(manifest.CodeBadEncoding):          "value is not valid UTF-8 or holds control characters",
	string(manifest.CodeBadDigest):            "value is not a digest of the declared form",
	string(manifest.CodeBadURL):               "value is not a URL of the declared form",
	string(manifest.CodeBadCertificate):       "value is not a certificate of the declared form",
	string(manifest.CodeRegionNotDeclared):    "field is not declared for the batch's region",
	string(manifest.CodeRecipientNotDeclared): "field is not declared for this recipient",
}

// quoteNothing rewrites rejections so that they carry codes and paths only:
// the message becomes the code's fixed text, and a path that names a field
// the manifest does not declare stops at "fields". Paths otherwise name
// manifest items and list positions, which come from the manifest and from
// the server, not from the client's text.
func quoteNothing(m *manifest.Manifest, rejected []wire.Rejection) []wire.Rejection {
	for i := range rejected {
		r := &rejected[i]
		if text, ok := rejectionText[r.Code]; ok {
			r.Message = text
		} else {
			r.Message = "the event was rejected"
		}
		r.Path = declaredPath(m, r.Path)
	}
	return rejected
}

func declaredPath(m *manifest.Manifest, path string) string {
	item, ok := strings.CutPrefix(path, "fields.")
	if !ok {
		switch path {
		case "", "id", "time", "type", "fields":
			return path
		}
		return ""
	}
	if i := strings.IndexByte(item, '['); i >= 0 {
		item = item[:i]
	}
	if m.Item(item) == nil {
		return "fields"
	}
	return path
}
