//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/cgo"
	"sync"
	"time"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/manifest"
)

// host is what a provision_agent handle stands for: one open agent, the
// context that closing cancels, and the background uploader.
type host struct {
	a   *agent.Agent
	dir string // key in openDirs

	// ctx is cancelled by close, which ends uploads in progress; their
	// data stays in the outbox.
	ctx    context.Context
	cancel context.CancelFunc

	// Calls hold mu for reading; close takes it for writing, so it waits
	// for calls in other threads to return before the agent is closed.
	mu     sync.RWMutex
	closed bool

	upMu     sync.Mutex
	upCancel context.CancelFunc
	upDone   chan struct{}
}

// openDirs holds the state directories open in this process: a second
// open of one is refused at once, where the agent's file lock would make
// it wait and then fail.
var (
	openDirsMu sync.Mutex
	openDirs   = map[string]bool{}
)

func dirKey(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	return abs, nil
}

// openHost opens an agent on stateDir with the settings of config_json.
func openHost(stateDir string, settings []byte) (cgo.Handle, error) {
	if stateDir == "" {
		return 0, invalid(errors.New("libprovision: a state directory is required"))
	}
	cfg, s, err := parseOpenSettings(stateDir, settings)
	if err != nil {
		return 0, invalid(err)
	}
	if cfg.ManifestFile != "" {
		// Load it here to tell a bad manifest from a storage failure; the
		// agent loads it again.
		if _, err := manifest.Load(cfg.ManifestFile); err != nil {
			return 0, invalid(err)
		}
	}
	if s.LogStderr {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	key, err := dirKey(stateDir)
	if err != nil {
		return 0, invalid(err)
	}
	openDirsMu.Lock()
	if openDirs[key] {
		openDirsMu.Unlock()
		return 0, fmt.Errorf("%w: it is open in this process (%s)", agent.ErrStateDirBusy, stateDir)
	}
	openDirs[key] = true
	openDirsMu.Unlock()
	release := func() {
		openDirsMu.Lock()
		delete(openDirs, key)
		openDirsMu.Unlock()
	}

	a, err := agent.Open(cfg)
	if err != nil {
		release()
		return 0, err
	}
	if s.Software != nil {
		sw := agent.Software(*s.Software)
		err = a.SetSoftware(sw)
	}
	if err == nil && s.LicenseProviderSite != "" {
		err = a.SetLicenseProvider(s.LicenseProviderSite)
	}
	if err != nil {
		a.Close()
		release()
		return 0, invalid(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return cgo.NewHandle(&host{a: a, dir: key, ctx: ctx, cancel: cancel}), nil
}

// lookup returns the host behind a handle. cgo.Handle.Value panics on a
// handle it never made or already deleted; a host's mistake must give
// PROVISION_ERR_CLOSED, not crash it. Handles are never reused.
func lookup(raw uint64) (h *host, err error) {
	if raw == 0 || uint64(uintptr(raw)) != raw {
		return nil, errClosed
	}
	defer func() {
		if recover() != nil {
			h, err = nil, errClosed
		}
	}()
	h, ok := cgo.Handle(uintptr(raw)).Value().(*host)
	if !ok {
		return nil, errClosed
	}
	return h, nil
}

// use runs fn with the agent while holding the handle open.
func use(raw uint64, fn func(h *host) error) error {
	h, err := lookup(raw)
	if err != nil {
		return err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return errClosed
	}
	return fn(h)
}

// callContext is the context of one call: cancelled by close, and by the
// timeout when there is one.
func (h *host) callContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(h.ctx, timeout)
	}
	return context.WithCancel(h.ctx)
}

// callError gives a failed call's error the status its context explains:
// a timeout, or a close from another thread.
func callError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return withCode(statusTimeout, fmt.Errorf("libprovision: time limit reached; what was not delivered stays in the outbox: %w", err))
	case context.Canceled:
		return withCode(statusClosed, fmt.Errorf("%w: %w", errClosedInCall, err))
	}
	return err
}

func closeHost(raw uint64) error {
	h, err := lookup(raw)
	if err != nil {
		return err
	}
	h.cancel() // ends uploads in progress and the background uploader
	h.stopUploader()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	h.closed = true
	h.stopUploader() // one a concurrent call started while close waited
	cgo.Handle(uintptr(raw)).Delete()
	err = h.a.Close()
	openDirsMu.Lock()
	delete(openDirs, h.dir)
	openDirsMu.Unlock()
	return err
}

func (h *host) startUploader(up agent.Upload) error {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	if h.upCancel != nil {
		return withCode(statusUploaderState, errAlreadyActive)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	h.upCancel, h.upDone = cancel, done
	go func() {
		defer close(done)
		_ = h.a.Run(ctx, up) // returns ctx's error when stopped; failures are retried inside
	}()
	return nil
}

// stopUploader stops the background uploader and waits for it; false when
// it was not running.
func (h *host) stopUploader() bool {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	if h.upCancel == nil {
		return false
	}
	h.upCancel()
	<-h.upDone
	h.upCancel, h.upDone = nil, nil
	return true
}

func (h *host) uploaderRunning() bool {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	return h.upCancel != nil
}
