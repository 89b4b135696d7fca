//go:build cgo

package main

/*
#cgo CFLAGS: -I${SRCDIR}/include
#define PROVISION_BUILD 1
#include <stdlib.h>
#include <string.h>
#include "provision.h"

// cgo cannot spell const; these names let the exported functions below
// have exactly the prototypes of provision.h, and the C compiler refuses
// the build when the two differ.
typedef const char pv_cchar;
typedef const uint8_t pv_cbyte;
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/manifest"
)

var manifestVersion = sync.OnceValue(func() string { return manifest.Reference().Version })

// call runs one exported function: it clears *errp, turns a panic into
// PROVISION_ERR_INTERNAL (a Go panic must never take the host down), and
// hands the error's message to the host in C memory.
func call(errp **C.char, fallback int, fn func() error) (status C.int) {
	if errp != nil {
		*errp = nil
	}
	defer func() {
		if r := recover(); r != nil {
			status = report(errp, withCode(statusInternal, fmt.Errorf("libprovision: internal error: %v", r)), fallback)
		}
	}()
	return report(errp, fn(), fallback)
}

func report(errp **C.char, err error, fallback int) C.int {
	code := statusOf(err, fallback)
	if code != statusOK && errp != nil {
		*errp = C.CString(err.Error())
	}
	return C.int(code)
}

func goString(s *C.pv_cchar) string {
	if s == nil {
		return ""
	}
	return C.GoString((*C.char)(unsafe.Pointer(s)))
}

// callWithUpload is call for the functions given upload_json: fn gets the
// settings read and checked (requireServer as parseUploadSettings has
// it), and settings that fail are the host's invalid argument.
func callWithUpload(errp **C.char, fallback int, uploadJSON *C.pv_cchar, requireServer bool, fn func(agent.Upload) error) C.int {
	raw := []byte(goString(uploadJSON))
	return call(errp, fallback, func() error {
		up, err := parseUploadSettings(raw, requireServer)
		if err != nil {
			return invalid(err)
		}
		return fn(up)
	})
}

// useCall runs fn with the agent and the context of one call without a
// time limit, and gives its error the status that context explains.
func useCall(a C.provision_agent, fn func(ctx context.Context, ag *agent.Agent) error) error {
	return use(uint64(a), func(h *host) error {
		ctx, cancel := h.callContext(0)
		defer cancel()
		return callError(ctx, fn(ctx, h.a))
	})
}

// useJSON is useCall for a call whose result is handed back in *out as
// JSON.
func useJSON[T any](a C.provision_agent, out **C.char, fn func(ctx context.Context, ag *agent.Agent) (T, error)) error {
	return use(uint64(a), func(h *host) error {
		ctx, cancel := h.callContext(0)
		defer cancel()
		v, err := fn(ctx, h.a)
		if err != nil {
			return callError(ctx, err)
		}
		return putJSON(out, v)
	})
}

// putJSON hands v to the host as a NUL-terminated JSON document in C
// memory; nothing when out is NULL.
func putJSON(out **C.char, v any) error {
	if out == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return withCode(statusInternal, err)
	}
	p := (*byte)(C.malloc(C.size_t(len(b) + 1)))
	if p == nil {
		return withCode(statusInternal, errors.New("libprovision: out of memory"))
	}
	dst := unsafe.Slice(p, len(b)+1)
	copy(dst, b)
	dst[len(b)] = 0
	*out = (*C.char)(unsafe.Pointer(p))
	return nil
}

func clearOut(out **C.char) {
	if out != nil {
		*out = nil
	}
}

//export provision_free
func provision_free(s *C.char) {
	C.free(unsafe.Pointer(s))
}

//export provision_abi_version
func provision_abi_version() C.int { return abiVersion }

//export provision_version
func provision_version() *C.char {
	mod := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		mod = bi.Main.Version
	}
	return C.CString(fmt.Sprintf("libprovision %s abi %d manifest %s %s", mod, abiVersion, manifestVersion(), runtime.Version()))
}

// statusNameStrings are the static strings provision_status_name hands
// out: made once in C memory and never freed.
var statusNameStrings = sync.OnceValue(func() map[int]*C.char {
	m := make(map[int]*C.char, len(statusNames)+1)
	for code, name := range statusNames {
		m[code] = C.CString(name)
	}
	m[-1] = C.CString("unknown")
	return m
})

//export provision_status_name
func provision_status_name(status C.int) *C.pv_cchar {
	m := statusNameStrings()
	p, ok := m[int(status)]
	if !ok {
		p = m[-1]
	}
	return (*C.pv_cchar)(unsafe.Pointer(p))
}

//export provision_open
func provision_open(stateDir, configJSON *C.pv_cchar, out *C.provision_agent, errp **C.char) C.int {
	return call(errp, statusStorage, func() error {
		if out == nil {
			return invalid(errors.New("libprovision: agent is NULL"))
		}
		*out = 0
		h, err := openHost(goString(stateDir), []byte(goString(configJSON)))
		if err != nil {
			return err
		}
		*out = C.provision_agent(h)
		return nil
	})
}

//export provision_close
func provision_close(a C.provision_agent, errp **C.char) C.int {
	return call(errp, statusStorage, func() error { return closeHost(uint64(a)) })
}

func consentCall(a C.provision_agent, out **C.char, errp **C.char, fn func(*agent.Agent) (agent.Consent, error)) C.int {
	clearOut(out)
	return call(errp, statusStorage, func() error {
		return use(uint64(a), func(h *host) error {
			c, err := fn(h.a)
			if err != nil {
				return err
			}
			return putJSON(out, c)
		})
	})
}

//export provision_consent_accept
func provision_consent_accept(a C.provision_agent, region *C.pv_cchar, out **C.char, errp **C.char) C.int {
	r := goString(region)
	return consentCall(a, out, errp, func(ag *agent.Agent) (agent.Consent, error) {
		if !slices.Contains(ag.Regions(), r) {
			return agent.Consent{}, invalid(fmt.Errorf("libprovision: region %q: the terms cover %v", r, ag.Regions()))
		}
		return ag.Accept(r)
	})
}

//export provision_consent_status
func provision_consent_status(a C.provision_agent, out **C.char, errp **C.char) C.int {
	return consentCall(a, out, errp, (*agent.Agent).Consent)
}

//export provision_consent_withdraw
func provision_consent_withdraw(a C.provision_agent, out **C.char, errp **C.char) C.int {
	return consentCall(a, out, errp, (*agent.Agent).Withdraw)
}

//export provision_set_software
func provision_set_software(a C.provision_agent, typ, name, version, edition, localization *C.pv_cchar, errp **C.char) C.int {
	sw := agent.Software{Type: goString(typ), Name: goString(name), Version: goString(version),
		Edition: goString(edition), Localization: goString(localization)}
	return call(errp, statusInvalidArgument, func() error {
		return use(uint64(a), func(h *host) error { return h.a.SetSoftware(sw) })
	})
}

//export provision_set_license_provider
func provision_set_license_provider(a C.provision_agent, site *C.pv_cchar, errp **C.char) C.int {
	s := goString(site)
	return call(errp, statusInvalidArgument, func() error {
		return use(uint64(a), func(h *host) error { return h.a.SetLicenseProvider(s) })
	})
}

//export provision_record_error
func provision_record_error(a C.provision_agent, typ, code, controlID *C.pv_cchar, errp **C.char) C.int {
	e := agent.UIError{Type: goString(typ), Code: goString(code), ControlID: goString(controlID)}
	return call(errp, statusStorage, func() error {
		if e.Type == "" || e.Code == "" {
			return invalid(errors.New("libprovision: an error needs a type and a code"))
		}
		return useCall(a, func(ctx context.Context, ag *agent.Agent) error { return ag.RecordError(ctx, e) })
	})
}

//export provision_record_task
func provision_record_task(a C.provision_agent, typ, status, errorType, errorCode *C.pv_cchar, durationMS C.int64_t, campaignID *C.pv_cchar, errp **C.char) C.int {
	t := agent.Task{Type: goString(typ), Status: goString(status), ErrorType: goString(errorType),
		ErrorCode: goString(errorCode), CampaignID: goString(campaignID)}
	return call(errp, statusStorage, func() error {
		d, err := millis("duration_ms", int64(durationMS))
		if err != nil {
			return invalid(err)
		}
		t.Duration = d
		return useCall(a, func(ctx context.Context, ag *agent.Agent) error { return ag.RecordTask(ctx, t) })
	})
}

// tlsObservation is what the TLS calls hand back; the trust fields of
// agent.TLSObservation are left out because a recorded chain is not
// verified.
type tlsObservation struct {
	Subject      string `json:"subject"`
	Issuer       string `json:"issuer"`
	SPKISHA256   string `json:"spki_sha256"`
	Certificates int    `json:"certificates"`
}

func recordChain(a C.provision_agent, p unsafe.Pointer, n C.size_t, split func([]byte) ([][]byte, error), out, errp **C.char) C.int {
	clearOut(out)
	return call(errp, statusStorage, func() error {
		if p == nil || n == 0 {
			return invalid(errors.New("libprovision: no certificate given"))
		}
		if n > maxChainBytes {
			return invalid(fmt.Errorf("libprovision: chain of %d bytes; at most %d", n, maxChainBytes))
		}
		chain, err := split(C.GoBytes(p, C.int(n)))
		if err != nil {
			return invalid(fmt.Errorf("libprovision: %w", err))
		}
		return useJSON(a, out, func(ctx context.Context, ag *agent.Agent) (tlsObservation, error) {
			obs, err := ag.RecordTLSChain(ctx, chain)
			return tlsObservation{obs.Subject, obs.Issuer, obs.SPKISHA256, obs.Certificates}, err
		})
	})
}

//export provision_record_tls_der
func provision_record_tls_der(a C.provision_agent, der *C.pv_cbyte, n C.size_t, out **C.char, errp **C.char) C.int {
	return recordChain(a, unsafe.Pointer(der), n, splitDER, out, errp)
}

//export provision_record_tls_pem
func provision_record_tls_pem(a C.provision_agent, text *C.pv_cchar, n C.size_t, out **C.char, errp **C.char) C.int {
	return recordChain(a, unsafe.Pointer(text), n, splitPEM, out, errp)
}

//export provision_scan_file
func provision_scan_file(a C.provision_agent, path *C.pv_cchar, out **C.char, errp **C.char) C.int {
	clearOut(out)
	p := goString(path)
	return call(errp, statusStorage, func() error {
		if _, err := os.Stat(p); err != nil {
			return invalid(fmt.Errorf("libprovision: %w", err))
		}
		return useJSON(a, out, func(ctx context.Context, ag *agent.Agent) (agent.FileReport, error) { return ag.ScanFile(ctx, p) })
	})
}

//export provision_collect
func provision_collect(a C.provision_agent, out **C.char, errp **C.char) C.int {
	clearOut(out)
	return call(errp, statusStorage, func() error {
		return useJSON(a, out, func(ctx context.Context, ag *agent.Agent) (agent.CollectReport, error) { return ag.Collect(ctx) })
	})
}

//export provision_flush
func provision_flush(a C.provision_agent, uploadJSON *C.pv_cchar, timeoutMS C.int64_t, out **C.char, errp **C.char) C.int {
	clearOut(out)
	return callWithUpload(errp, statusUpload, uploadJSON, true, func(up agent.Upload) error {
		timeout := time.Duration(0)
		if timeoutMS > 0 {
			timeout = time.Duration(timeoutMS) * time.Millisecond
		}
		return use(uint64(a), func(h *host) error {
			ctx, cancel := h.callContext(timeout)
			defer cancel()
			rep, err := h.a.Flush(ctx, up)
			// The report says what went out even when the rest did not.
			if jerr := putJSON(out, rep); jerr != nil {
				return jerr
			}
			return callError(ctx, err)
		})
	})
}

//export provision_uploader_start
func provision_uploader_start(a C.provision_agent, uploadJSON *C.pv_cchar, errp **C.char) C.int {
	return callWithUpload(errp, statusStorage, uploadJSON, true, func(up agent.Upload) error {
		return use(uint64(a), func(h *host) error { return h.startUploader(up) })
	})
}

//export provision_uploader_stop
func provision_uploader_stop(a C.provision_agent, errp **C.char) C.int {
	return call(errp, statusStorage, func() error {
		return use(uint64(a), func(h *host) error {
			if !h.stopUploader() {
				return withCode(statusUploaderState, errNotRunning)
			}
			return nil
		})
	})
}

//export provision_dry_run
func provision_dry_run(a C.provision_agent, uploadJSON *C.pv_cchar, out **C.char, errp **C.char) C.int {
	clearOut(out)
	return callWithUpload(errp, statusStorage, uploadJSON, false, func(up agent.Upload) error {
		return useJSON(a, out, func(ctx context.Context, ag *agent.Agent) (agent.Preview, error) { return ag.DryRun(ctx, up) })
	})
}

//export provision_sent
func provision_sent(a C.provision_agent, last C.int32_t, out **C.char, errp **C.char) C.int {
	clearOut(out)
	return call(errp, statusStorage, func() error {
		return use(uint64(a), func(h *host) error {
			entries, err := h.a.Sent(int(last))
			if err != nil {
				return err
			}
			if entries == nil {
				entries = []agent.SentEntry{}
			}
			return putJSON(out, entries)
		})
	})
}

// hostStatus is provision_status's document: the agent's status and what
// only the library knows.
type hostStatus struct {
	agent.Status
	UploaderRunning bool   `json:"uploader_running"`
	ManifestVersion string `json:"manifest_version"`
}

//export provision_status
func provision_status(a C.provision_agent, out **C.char, errp **C.char) C.int {
	clearOut(out)
	return call(errp, statusStorage, func() error {
		return use(uint64(a), func(h *host) error {
			st, err := h.a.Status()
			if err != nil {
				return err
			}
			return putJSON(out, hostStatus{st, h.uploaderRunning(), h.a.ManifestVersion()})
		})
	})
}
