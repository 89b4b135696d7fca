package sim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/wire"
)

// AgentFleet drives every installation through the real agent library:
// each has its own state directory (consent, installation id, durable
// outbox, sent log), its software and operating system are fed to the
// agent's collectors as simulated device facts, its errors, tasks and TLS
// chains are recorded with the library calls a host application uses, and
// the agent uploads over HTTPS with its own batching, retry and sent log.
//
// The agent learns file signatures only by scanning real signed PE files,
// which the simulator does not produce; an installation's file_signature
// events therefore travel in a separate batch sent by Wire under the
// installation id the agent created.
type AgentFleet struct {
	Root   string // state directories are Root/<installation index>
	Server string // base URL agents upload to (the Gateway's)
	CAFile string // PEM roots for the Server's certificate
	Wire   *Client
	// Retry is how long to wait before flushing again an outbox whose
	// upload failed; the events stay in it meanwhile. Default 100 ms.
	Retry time.Duration
	// Now is the agents' clock when they upload; nil means the wall
	// clock. An agent records an installation-day's events on the
	// simulated clock of that day, then its clock reads Now, as a device
	// that uploads its backlog: sent_at and the server's clock agree and
	// the events stay on their days. (Uploading with the day's clock
	// would make every replayed batch look like one from a device whose
	// clock is days behind.)
	Now func() time.Time
	// SkipDelivered leaves each Result's Delivered empty instead of
	// listing the ids of the events the agents' sent logs show as
	// accepted, which saves decoding every batch again; for a Truth that
	// does not record them.
	SkipDelivered bool
	// MaxUploads bounds the uploads to the server at once (the agents'
	// flushes and Wire's batches); installations past it wait their turn
	// while the others record. A server answers more than it admits with
	// 429 and a Retry-After of a second or more, which a fleet on one
	// machine would otherwise spend waiting. 0 means no bound.
	MaxUploads int

	slotsOnce sync.Once
	slots     chan struct{}

	mu     sync.Mutex
	ids    map[int]string      // installation index → the agent's installation id
	agents map[int]*fleetAgent // open agents by installation index
	closed bool
}

// fleetAgent is one installation's agent, open from its first day to
// Close, as a host application keeps it open while it runs: the outbox
// is not reopened every simulated day.
type fleetAgent struct {
	*agent.Agent
	clock *simClock
	os    *osFacts
}

// osFacts is what the installation's operating system reports today; the
// agent's ReadOS reads it.
type osFacts struct {
	mu   sync.Mutex
	info agent.OSInfo
}

func (o *osFacts) set(info agent.OSInfo) {
	o.mu.Lock()
	o.info = info
	o.mu.Unlock()
}

func (o *osFacts) read(context.Context) (agent.OSInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.info, nil
}

// agentFor returns the open agent of installation in, opening it on its
// first day. Days run in order and an installation-day is sent once, so
// no two goroutines use one agent at a time.
func (af *AgentFleet) agentFor(in *Installation, sw agent.Software, osInfo agent.OSInfo, t time.Time) (*fleetAgent, error) {
	af.mu.Lock()
	fa, closed := af.agents[in.Index], af.closed
	af.mu.Unlock()
	if closed {
		return nil, agent.ErrClosed
	}
	if fa != nil {
		fa.clock.set(t)
		fa.os.set(osInfo)
		if err := fa.SetSoftware(sw); err != nil {
			return nil, err
		}
		return fa, nil
	}
	// Opened without the lock, which other installations' agents need
	// meanwhile: opening creates and syncs the outbox.
	fa = &fleetAgent{clock: &simClock{t: t}, os: &osFacts{info: osInfo}}
	a, err := agent.Open(agent.Config{
		StateDir:            filepath.Join(af.Root, strconv.Itoa(in.Index)),
		Software:            sw,
		LicenseProviderSite: in.Shop,
		Now:                 fa.clock.now,
		ReadOS:              fa.os.read,
		Limits:              agent.Limits{SentEntries: 1000},
	})
	if err != nil {
		return nil, err
	}
	fa.Agent = a
	af.mu.Lock()
	defer af.mu.Unlock()
	if af.closed {
		return nil, errors.Join(agent.ErrClosed, a.Close())
	}
	if af.agents == nil {
		af.agents = map[int]*fleetAgent{}
	}
	af.agents[in.Index] = fa
	return fa, nil
}

// upload runs f in one of the MaxUploads slots.
func (af *AgentFleet) upload(ctx context.Context, f func() error) error {
	if af.MaxUploads <= 0 {
		return f()
	}
	af.slotsOnce.Do(func() { af.slots = make(chan struct{}, af.MaxUploads) })
	select {
	case af.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-af.slots }()
	return f()
}

// Close closes every open agent; Send fails after it.
func (af *AgentFleet) Close() error {
	af.mu.Lock()
	defer af.mu.Unlock()
	af.closed = true
	var errs []error
	for i, fa := range af.agents {
		errs = append(errs, fa.Close())
		delete(af.agents, i)
	}
	return errors.Join(errs...)
}

// simClock is an agent's clock: a simulated time while it records, and a
// live clock (follow) while it uploads.
type simClock struct {
	mu   sync.Mutex
	t    time.Time
	live func() time.Time // when set, the clock reads it instead of t
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live != nil {
		return c.live()
	}
	return c.t
}

// follow makes the clock read live until the next set.
func (c *simClock) follow(live func() time.Time) {
	c.mu.Lock()
	c.live = live
	c.mu.Unlock()
}

// set makes the clock read t, a simulated time.
func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.live = nil
	c.mu.Unlock()
}

// Send plays one installation-day through the agent and returns what the
// server confirmed, with the ids of the delivered events as the agent's
// sent log shows them.
func (af *AgentFleet) Send(ctx context.Context, u *Upload) (*Result, error) {
	in := u.Installation
	var osInfo agent.OSInfo
	var sw agent.Software
	for _, ev := range u.Batch.Events {
		switch ev.Type {
		case "software":
			sw = agent.Software{Type: str(ev, "software.type"), Name: str(ev, "software.name"), Version: str(ev, "software.version"),
				Edition: str(ev, "software.edition"), Localization: str(ev, "software.localization")}
		case "os":
			osInfo = agent.OSInfo{Type: str(ev, "os.type"), Version: str(ev, "os.version"), Edition: str(ev, "os.edition")}
			osInfo.UpdatePackages, _ = ev.Fields["os.update_packages"].([]string)
		}
	}
	fa, err := af.agentFor(in, sw, osInfo, u.Batch.Events[0].Time)
	if err != nil {
		return nil, err
	}
	a, agentClock := fa.Agent, fa.clock
	c, err := a.Consent()
	if err != nil {
		return nil, err
	}
	if !c.Accepted {
		if c, err = a.Accept(in.Region); err != nil {
			return nil, err
		}
	}
	af.mu.Lock()
	if af.ids == nil {
		af.ids = map[int]string{}
	}
	af.ids[in.Index] = c.InstallationID
	af.mu.Unlock()

	var files []provision.Event
	for _, ev := range u.Batch.Events {
		agentClock.set(ev.Time)
		if err := replay(ctx, a, ev, &files); err != nil {
			return nil, fmt.Errorf("installation %d, %s event: %w", in.Index, ev.Type, err)
		}
	}

	if af.Now != nil {
		agentClock.follow(af.Now)
	} else {
		agentClock.follow(time.Now)
	}
	res := &Result{Delivered: []string{}}
	batches := 0
	up := agent.Upload{Server: AgentServerURL(af.Server, in), CAFile: af.CAFile, MaxAttempts: 3, BackoffBase: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
	for {
		var rep agent.FlushReport
		err := af.upload(ctx, func() (err error) {
			rep, err = a.Flush(ctx, up)
			return err
		})
		batches += rep.Batches
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !wire.IsRetryable(err) {
			// A certificate that does not verify, say: the next flush
			// would meet it again.
			return nil, fmt.Errorf("installation %d: upload: %w", in.Index, err)
		}
		res.Retries++
		if err := clock.Sleep(ctx, cmp(af.Retry, 100*time.Millisecond)); err != nil {
			return nil, err
		}
	}
	if batches > 0 {
		entries, err := a.Sent(batches)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			collectDelivered(e, res, !af.SkipDelivered)
		}
	}
	if len(files) > 0 && af.Wire != nil {
		fb := &Upload{Installation: in, Day: u.Day, Batch: provision.Batch{
			ID: u.Batch.ID, InstallationID: c.InstallationID, Region: c.Region,
			ManifestVersion: a.ManifestVersion(), Events: files,
		}}
		var fr *Result
		err := af.upload(ctx, func() (err error) {
			fr, err = af.Wire.Send(ctx, fb)
			return err
		})
		if err != nil {
			return nil, err
		}
		res.Accepted += fr.Accepted
		res.Retries += fr.Retries
		res.Rejected = append(res.Rejected, fr.Rejected...)
		rejected := map[int]bool{}
		for _, r := range fr.Rejected {
			rejected[r.Index] = true
		}
		if fr.Dropped == "" && !af.SkipDelivered {
			for i, ev := range files {
				if !rejected[i] {
					res.Delivered = append(res.Delivered, ev.ID)
				}
			}
		}
	}
	return res, nil
}

// InstallationID is the id the agent of installation index created when
// its terms were accepted, "" before.
func (af *AgentFleet) InstallationID(index int) string {
	af.mu.Lock()
	defer af.mu.Unlock()
	return af.ids[index]
}

func cmp(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// collectDelivered adds the outcome of one sent-log entry to res, and
// with ids the ids of the events the server accepted.
func collectDelivered(e agent.SentEntry, res *Result, ids bool) {
	if e.Kind != "batch" || e.Status != "accepted" {
		if e.Kind == "batch" && e.Error != nil {
			res.Dropped = e.Error.Code
		}
		return
	}
	rejected := map[int]bool{}
	for _, r := range e.Rejected {
		rejected[r.Index] = true
		res.Rejected = append(res.Rejected, wire.Rejection{Index: r.Index, Code: r.Code, Message: r.Message})
	}
	res.Accepted += e.Accepted
	res.Duplicate = res.Duplicate || e.Duplicate
	if !ids {
		return
	}
	var b struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(e.Batch, &b); err != nil {
		return
	}
	for i, ev := range b.Events {
		if !rejected[i] {
			res.Delivered = append(res.Delivered, ev.ID)
		}
	}
}

// replay turns one simulated event into the library call a host
// application makes for it. Repeats within a day (event.count) are one
// call: the agent would fold them into one event anyway.
func replay(ctx context.Context, a *agent.Agent, ev provision.Event, files *[]provision.Event) error {
	switch ev.Type {
	case "software", "os", "license":
		return nil // facts the collectors read
	case "user_count":
		rep, err := a.Collect(ctx)
		if err != nil {
			return err
		}
		if len(rep.Skipped) > 0 {
			return fmt.Errorf("collectors skipped %v", rep.Skipped)
		}
		return nil
	case "task":
		ms, _ := ev.Fields["task.duration"].(int64)
		return a.RecordTask(ctx, agent.Task{
			Type: str(ev, "task.type"), Status: str(ev, "task.status"),
			ErrorType: str(ev, "task.error_type"), ErrorCode: str(ev, "task.error_code"),
			Duration: time.Duration(ms) * time.Millisecond, CampaignID: str(ev, "task.campaign_id"),
		})
	case "ui_error":
		return a.RecordError(ctx, agent.UIError{Type: str(ev, "error.type"), Code: str(ev, "error.code"), ControlID: str(ev, "ui.control_id")})
	case "tls_connection":
		der, err := base64.StdEncoding.DecodeString(str(ev, "tls.certificate"))
		if err != nil {
			return err
		}
		_, err = a.RecordTLSChain(ctx, [][]byte{der})
		return err
	case "file_signature":
		*files = append(*files, ev)
		return nil
	}
	return errors.New("no library call for this event type")
}

func str(ev provision.Event, id string) string {
	s, _ := ev.Fields[id].(string)
	return s
}

// viaPath is the path prefix that tells the Gateway which simulated client
// address an agent's request comes from.
const viaPath = "/via/"

// AgentServerURL is the base URL an installation's agent uploads to: the
// gateway, with the installation's simulated address in the path.
func AgentServerURL(gateway string, in *Installation) string {
	return gateway + viaPath + url.PathEscape(in.Addr.String())
}
