package privacy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/routemux"
	"github.com/provisionhq/provision/internal/throttle"
	"github.com/provisionhq/provision/internal/wire"
)

// MaxRequestBody bounds the body of a deletion or admin request: two ids
// and JSON punctuation need far less.
const MaxRequestBody = 4 << 10

// eraseTimeout bounds the synchronous part of an erasure over HTTP; what
// is left is finished by Resume and reported as pending.
const eraseTimeout = 20 * time.Second

// writeError answers in the API's error shape. A 503 asks the caller to
// come back in 30 s: erasures wait on the store, not on load.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	e := &wire.Error{Status: status, Code: code, Message: msg}
	if status == http.StatusServiceUnavailable {
		e.RetryAfter = 30 * time.Second
	}
	wire.WriteError(w, e)
}

// decodeRequest reads a bounded JSON body into v, refusing unknown keys
// and trailing data.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType, "the body must be application/json")
		return false
	}
	// The body is two short ids: it is never compressed.
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeError(w, http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding, "the body must not be compressed (Content-Encoding: identity)")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxRequestBody))
			return false
		}
		writeError(w, http.StatusBadRequest, wire.CodeBadJSON, "the body could not be read")
		return false
	}
	if err := DecodeDeletionJSON(body, v); err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadJSON, err.Error())
		return false
	}
	return true
}

// DecodeDeletionJSON decodes a request body strictly: one JSON object of
// the documented keys and nothing after it.
func DecodeDeletionJSON(body []byte, v any) error {
	if len(body) > MaxRequestBody {
		return fmt.Errorf("larger than %d bytes", MaxRequestBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("the body must be a JSON object with installation_id and request_id strings")
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// eraseError answers for an error of Erase.
func eraseError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadInstallationID):
		writeError(w, http.StatusBadRequest, wire.CodeBadInstallationID, "installation_id must be the installation's random UUID")
	case errors.Is(err, ErrBadRequestID):
		writeError(w, http.StatusBadRequest, wire.CodeBadRequestID, ErrBadRequestID.Error())
	case errors.Is(err, ErrRequestConflict):
		writeError(w, http.StatusConflict, wire.CodeRequestConflict, ErrRequestConflict.Error())
	case errors.Is(err, provision.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "the store cannot take work now; retry later")
	default:
		writeError(w, http.StatusInternalServerError, wire.CodeInternal, "internal error")
	}
}

// NewDeletionHandler serves POST /v1/deletion: the agent's erasure request
// on consent withdrawal. Knowing the installation id is the authority: it
// is a 122-bit random secret of the device. The answer is 202 with status
// complete when the erasure finished within the request, pending when it
// was begun (the tombstone is durable) and Resume will finish it.
func NewDeletionHandler(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "use POST")
			return
		}
		var req wire.DeletionRequest
		if !decodeRequest(w, r, &req) {
			return
		}
		if req.RequestID == "" || !ValidRequestID(req.RequestID) {
			writeError(w, http.StatusBadRequest, wire.CodeBadRequestID, ErrBadRequestID.Error())
			return
		}
		status, err := s.erasePossiblyPending(r.Context(), req, SourceDevice)
		if err != nil {
			eraseError(w, err)
			return
		}
		wire.WriteJSON(w, http.StatusAccepted, wire.DeletionAnswer{RequestID: req.RequestID, Status: status})
	})
}

// erasePossiblyPending runs the erasure; when the tombstone is durable but
// the deletion could not finish, it reports pending rather than failing.
func (s *Service) erasePossiblyPending(ctx context.Context, req wire.DeletionRequest, source string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, eraseTimeout)
	defer cancel()
	rec, err := s.Erase(ctx, req.InstallationID, req.RequestID, source)
	if err == nil {
		return rec.Status, nil
	}
	// If the request was recorded, the erasure will be finished by Resume.
	if got, serr := s.store.Request(context.WithoutCancel(ctx), req.RequestID); serr == nil && got.IDHash == IDHash(req.InstallationID) {
		s.log.Warn("erasure left pending", "request_id", req.RequestID, "err", err)
		return got.Status, nil
	}
	return "", err
}

// TokenHash is how the operator's bearer token is stored: its SHA-256.
func TokenHash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// NewAdminHandler serves the operator endpoints. Every request must carry
// "Authorization: Bearer TOKEN" where the SHA-256 of TOKEN is tokenHash;
// the comparison takes constant time.
//
//	POST /v1/admin/erase          {"installation_id","request_id"?} → 200 receipt
//	POST /v1/admin/export         {"installation_id"}               → 200 export
//	GET  /v1/admin/erasures/{id}                                    → 200 receipt or request
//
// The installation id travels in a body, never in a URL, so it does not
// end up in access logs.
//
// Failed attempts are throttled per client address (clientAddr, the
// server's trusted-proxy rule; nil means the peer) and in all, with 429
// and Retry-After; a right token costs nothing.
func NewAdminHandler(s *Service, tokenHash [sha256.Size]byte, clientAddr func(*http.Request) (netip.Addr, bool)) http.Handler {
	if clientAddr == nil {
		clientAddr = peerAddr
	}
	guard := throttle.New(throttle.DefaultPerClient, throttle.DefaultGlobal, nil)
	mux := routemux.New()
	mux.HandleFunc("POST /v1/admin/erase", func(w http.ResponseWriter, r *http.Request) {
		var req wire.DeletionRequest
		if !decodeRequest(w, r, &req) {
			return
		}
		if req.RequestID != "" && !ValidRequestID(req.RequestID) {
			writeError(w, http.StatusBadRequest, wire.CodeBadRequestID, ErrBadRequestID.Error())
			return
		}
		rec, err := s.Erase(r.Context(), req.InstallationID, req.RequestID, SourceOperator)
		if err != nil {
			eraseError(w, err)
			return
		}
		wire.WriteJSON(w, http.StatusOK, rec)
	})
	mux.HandleFunc("POST /v1/admin/export", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			InstallationID string `json:"installation_id"`
		}
		if !decodeRequest(w, r, &req) {
			return
		}
		x, err := s.Export(r.Context(), req.InstallationID)
		if err != nil {
			eraseError(w, err)
			return
		}
		wire.WriteJSON(w, http.StatusOK, x)
	})
	mux.HandleFunc("GET /v1/admin/erasures/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := s.Status(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, provision.ErrNotFound):
			writeError(w, http.StatusNotFound, wire.CodeNotFound, "no such erasure request")
		case err != nil:
			eraseError(w, err)
		default:
			wire.WriteJSON(w, http.StatusOK, rec)
		}
	})
	return &listed{mux: mux, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refund, wait := guard.Take(clientAddr(r))
		if wait > 0 {
			throttle.SetRetryAfter(w, wait)
			writeError(w, http.StatusTooManyRequests, wire.CodeTooManyAttempts, "too many failed attempts; wait and try again")
			return
		}
		if !authorized(r, tokenHash) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="provision-admin"`)
			writeError(w, http.StatusUnauthorized, wire.CodeUnauthorized, "a valid bearer token is required")
			return
		}
		refund()
		mux.ServeHTTP(w, r)
	})}
}

// listed is a handler in front of a mux that lists the mux's routes.
type listed struct {
	http.Handler
	mux *routemux.Mux
}

// Patterns lists the routes served, as http.ServeMux patterns.
func (l *listed) Patterns() []string { return l.mux.Patterns() }

func authorized(r *http.Request, want [sha256.Size]byte) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := TokenHash(h[len(prefix):])
	// An all-zero hash means no token was configured: refuse everything.
	var zero [sha256.Size]byte
	if subtle.ConstantTimeCompare(want[:], zero[:]) == 1 {
		return false
	}
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func peerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
