package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// ValidationError means an event did not pass the manifest: the agent
// refuses to queue anything the manifest does not declare.
type ValidationError struct {
	Type       string
	Violations []manifest.Violation
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.String()
	}
	return fmt.Sprintf("agent: %s event not declared by the manifest: %s", e.Type, strings.Join(msgs, "; "))
}

// build makes an event of the type from the fields that have a value and
// are declared for the region, and checks it against the manifest.
func (a *Agent) build(typ string, fields map[string]any, region string, at time.Time) (*provision.Event, error) {
	clean := make(map[string]any, len(fields))
	for k, v := range fields {
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
		case []string:
			if len(x) == 0 {
				continue
			}
		}
		// The region decides which items apply: an item not declared for
		// it is not collected there.
		if it := a.m.Item(k); it != nil && !it.ForRegion(region) {
			continue
		}
		clean[k] = v
	}
	ev := &provision.Event{ID: uuid.NewString(), Type: typ, Time: at.UTC().Truncate(time.Second), Fields: clean}
	if v := a.m.CheckEvent(nil, 0, ev, region); len(v) > 0 {
		return nil, &ValidationError{Type: typ, Violations: v}
	}
	return ev, nil
}

// record queues an event of a counted type: repeats of the same fields in
// one aggregation period become one event with event.count.
func (a *Agent) record(_ context.Context, typ string, fields map[string]any) error {
	c, err := a.consented()
	if err != nil {
		return err
	}
	start := a.now().UTC().Truncate(a.period)
	fields["event.count"] = int64(1) // the outbox keeps the real count
	ev, err := a.build(typ, fields, c.Region, start)
	if err != nil {
		return err
	}
	return a.store.Add(ev, c.Region, aggregationKey(typ, start, ev.Fields))
}

// recordOnce queues an event that is never aggregated, such as a task.
func (a *Agent) recordOnce(_ context.Context, typ string, fields map[string]any) error {
	c, err := a.consented()
	if err != nil {
		return err
	}
	ev, err := a.build(typ, fields, c.Region, a.now())
	if err != nil {
		return err
	}
	return a.store.Add(ev, c.Region, "")
}

// aggregationKey names one observation in one period: the type, the period
// start and a digest of the fields other than the count.
func aggregationKey(typ string, start time.Time, fields map[string]any) string {
	h := sha256.New()
	rest := make(map[string]any, len(fields))
	for k, v := range fields {
		if k != "event.count" {
			rest[k] = v
		}
	}
	// encoding/json writes map keys sorted, so equal fields give equal bytes.
	_ = json.NewEncoder(h).Encode(rest)
	return fmt.Sprintf("%s|%d|%s", typ, start.Unix(), hex.EncodeToString(h.Sum(nil)[:16]))
}

// UIError is a problem the application met while someone used it.
type UIError struct {
	Type      string // the kind of error, such as connection_failed
	Code      string // the code the application reports
	ControlID string // the control in use, never what the person typed
}

// RecordError counts an error. Repeats within the aggregation period travel
// as one event with a count.
func (a *Agent) RecordError(ctx context.Context, e UIError) error {
	if e.Type == "" || e.Code == "" {
		return errors.New("agent: an error needs a type and a code")
	}
	fields := map[string]any{"error.type": e.Type, "error.code": e.Code, "ui.control_id": e.ControlID}
	if sw := a.currentSoftware(); sw.Version != "" {
		fields["software.version"] = sw.Version
	}
	return a.record(ctx, "ui_error", fields)
}

// Task types and statuses as the manifest declares them.
const (
	TaskInstall = "install"
	TaskRemove  = "remove"
	TaskUpgrade = "upgrade"
	TaskUpdate  = "update"

	TaskSuccess        = "success"
	TaskFailure        = "failure"
	TaskCancelled      = "cancelled"
	TaskRebootRequired = "reboot_required"
)

// Task is the outcome of one installation, removal, upgrade or update.
type Task struct {
	Type       string        `json:"type"`
	Status     string        `json:"status"`
	ErrorType  string        `json:"error_type,omitempty"`
	ErrorCode  string        `json:"error_code,omitempty"`
	Duration   time.Duration `json:"duration"`
	CampaignID string        `json:"campaign_id,omitempty"`
}

// RecordTask queues the outcome of a task, with the versions of the
// application and the operating system it ran on.
func (a *Agent) RecordTask(ctx context.Context, t Task) error {
	if t.Duration < 0 {
		return errors.New("agent: a task cannot take negative time")
	}
	fields := map[string]any{
		"task.type":        t.Type,
		"task.status":      t.Status,
		"task.error_type":  t.ErrorType,
		"task.error_code":  t.ErrorCode,
		"task.duration":    t.Duration.Milliseconds(),
		"task.campaign_id": t.CampaignID,
	}
	if sw := a.currentSoftware(); sw.Version != "" {
		fields["software.version"] = sw.Version
	}
	if _, err := a.consented(); err != nil {
		return err
	}
	if osi, err := a.readOS(ctx); err == nil {
		fields["os.type"], fields["os.version"] = osi.Type, osi.Version
	} else {
		a.log.Warn("operating system not read for a task", "err", err)
	}
	return a.recordOnce(ctx, "task", fields)
}
