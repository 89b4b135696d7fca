package sim

import (
	"math/rand/v2"
	"time"

	"github.com/provisionhq/provision"
)

// Upload is what one installation sends for one simulated day.
type Upload struct {
	Installation *Installation
	Day          int
	Batch        provision.Batch
}

// DayUploads advances the world by day d and returns the batch of every
// installation that was in use that day. Days must be generated in order,
// from 0, each once: installations carry state (version, failed upgrade
// attempts) from one day to the next. The ground truth in t is updated.
func (f *Fleet) DayUploads(d int, manifestVersion string, t *Truth) []*Upload {
	dt := t.day(d)
	var out []*Upload
	for _, in := range f.Installations {
		u := f.installationDay(d, in, manifestVersion, dt)
		if u != nil {
			t.seen(in.Index)
			for _, ev := range u.Batch.Events {
				if ev.Type == "task" {
					t.taskBits[in.Index] = true
				}
			}
			out = append(out, u)
		}
	}
	return out
}

// eventClock hands out event times in increasing order within one day.
type eventClock struct {
	t time.Time
	r *rand.Rand
}

func (c *eventClock) next() time.Time {
	c.t = c.t.Add(time.Duration(1+c.r.IntN(900)) * time.Second)
	return c.t
}

func (f *Fleet) installationDay(d int, in *Installation, manifestVersion string, dt *DayTruth) *Upload {
	if d < in.Joined || d > in.Removed {
		return nil
	}
	r := in.rng
	joining, removing := d == in.Joined, d == in.Removed
	active := r.Float64() < in.Activity
	if !joining && !removing && !active {
		return nil
	}
	dayStart := f.Start.Add(time.Duration(d) * day)
	clock := &eventClock{t: dayStart.Add(time.Duration(6*3600+r.IntN(8*3600)) * time.Second), r: r}
	var evs []provision.Event
	add := func(typ string, fields map[string]any) {
		evs = append(evs, provision.Event{ID: hexID(r), Type: typ, Time: clock.next(), Fields: fields})
		dt.Events[typ]++
	}
	task := func(typ, status string, dur time.Duration, campaign, errType, errCode string) {
		fields := map[string]any{
			"task.type":        typ,
			"task.status":      status,
			"task.duration":    dur.Milliseconds(),
			"software.version": releases[in.version],
			"os.type":          in.OS.Type,
			"os.version":       in.OS.Version,
		}
		if campaign != "" {
			fields["task.campaign_id"] = campaign
		}
		if errType != "" {
			fields["task.error_type"] = errType
			fields["task.error_code"] = errCode
		}
		add("task", fields)
	}

	if joining {
		in.version = f.currentRelease(d)
		if r.Float64() < 0.03 {
			task("install", "failure", seconds(r, 20, 60), "", "prerequisite_missing", "0x80070666")
		}
		status := "success"
		if in.OS.Type == "windows" && r.Float64() < 0.2 {
			status = "reboot_required"
		}
		task("install", status, seconds(r, 45, 200), "", "", "")
		add("license", map[string]any{"license.provider_site": in.Shop})
	} else if (d-in.Joined)%7 == 0 {
		add("license", map[string]any{"license.provider_site": in.Shop})
	}

	// Upgrade campaigns: at most one attempt a day, three per campaign.
	for k, cp := range campaigns {
		if in.version != cp.From || d < in.offers[k] || in.failedTries[k] >= 3 || removing {
			continue
		}
		dt.campaign(cp.ID).Attempts++
		if r.Float64() < cp.FailRate {
			in.failedTries[k]++
			dt.campaign(cp.ID).Failures++
			code := cp.ErrorCodes[r.IntN(len(cp.ErrorCodes))]
			task("upgrade", "failure", seconds(r, 30, 400), cp.ID, cp.ErrorType, code)
		} else {
			in.version = cp.To
			task("upgrade", "success", seconds(r, 60, 300), cp.ID, "", "")
		}
		break
	}

	version := releases[in.version]
	updates := f.installedUpdates(d, in)
	add("software", map[string]any{
		"software.type":         "vpn",
		"software.name":         ProductName,
		"software.version":      version,
		"software.edition":      in.Edition,
		"software.localization": in.Locale,
	})
	add("os", map[string]any{
		"os.type":            in.OS.Type,
		"os.version":         in.OS.Version,
		"os.edition":         in.OSEdition,
		"os.update_packages": updates,
	})
	add("user_count", map[string]any{
		"software.name":      ProductName,
		"software.version":   version,
		"os.version":         in.OS.Version,
		"os.update_packages": updates,
	})
	dt.Active++
	dt.ByVersion[version]++
	dt.ByCountry[in.Country]++
	dt.ByOS[in.OS.Type]++

	f.uiErrors(r, in, add)
	f.tlsScans(d, r, in, add, dt)
	f.fileScans(d, r, in, add, dt)

	if removing {
		task("remove", "success", seconds(r, 10, 90), "", "", "")
	}
	last := evs[len(evs)-1].Time
	return &Upload{Installation: in, Day: d, Batch: provision.Batch{
		ID:              hexID(r),
		InstallationID:  in.ID,
		Region:          in.Region,
		ManifestVersion: manifestVersion,
		SentAt:          last.Add(time.Duration(1+r.IntN(600)) * time.Second),
		Events:          evs,
	}}
}

func (f *Fleet) installedUpdates(d int, in *Installation) []string {
	out := append([]string(nil), in.OS.Base...)
	for _, u := range in.OS.Monthly {
		if d >= int(u.Start*float64(f.Days))+in.updateLag {
			out = append(out, u.ID)
		}
	}
	return out
}

type addFunc func(typ string, fields map[string]any)

func (f *Fleet) uiErrors(r *rand.Rand, in *Installation, add addFunc) {
	n := 0
	switch x := r.Float64(); {
	case x < 0.55:
	case x < 0.85:
		n = 1
	case x < 0.95:
		n = 2
	default:
		n = 3
	}
	// The broken 5.14.0 release also crashes its tray menu.
	if releases[in.version] == "5.14.0.1231" && r.Float64() < 0.4 {
		add("ui_error", map[string]any{
			"error.type":       "ui_crash",
			"error.code":       "E0C05",
			"ui.control_id":    "tray.menu_0",
			"software.version": releases[in.version],
			"event.count":      1 + r.IntN(4),
		})
	}
	for range n {
		add("ui_error", map[string]any{
			"error.type":       pickW(r, errorKinds),
			"error.code":       f.errorCodes[f.errorDist.draw(r)],
			"ui.control_id":    f.controls[f.controlDist.draw(r)],
			"software.version": releases[in.version],
			"event.count":      1 + int(r.ExpFloat64()*3),
		})
	}
}

func (f *Fleet) tlsScans(d int, r *rand.Rand, in *Installation, add addFunc, dt *DayTruth) {
	p := f.PKI
	n := 2 + r.IntN(5)
	seen := make(map[int]bool, n)
	sawMalicious, sawProxy := false, false
	for range n {
		i := f.siteDist.draw(r)
		if seen[i] {
			continue
		}
		seen[i] = true
		var leaf *Cert
		switch {
		case in.Proxy >= 0 && i < len(p.Enterprise[in.Proxy].Leaves):
			leaf = p.Enterprise[in.Proxy].Leaves[i]
			sawProxy = true
		case in.Intercepted >= 0 && d >= in.Intercepted && i < len(p.Interception.Leaves):
			leaf = p.Interception.Leaves[i]
			sawMalicious = true
		default:
			leaf = p.Sites[i].Leaf
		}
		add("tls_connection", map[string]any{
			"tls.certificate": leaf.Base64,
			"tls.spki_sha256": leaf.SPKISHA256,
			"event.count":     1 + int(r.ExpFloat64()*20),
		})
	}
	if r.Float64() < 0.05 {
		s := p.Expired
		add("tls_connection", map[string]any{
			"tls.certificate": s.Leaf.Base64,
			"tls.spki_sha256": s.Leaf.SPKISHA256,
			"event.count":     1 + r.IntN(5),
		})
	}
	if sawMalicious {
		dt.Intercepted++
	}
	if sawProxy {
		dt.EnterpriseProxied++
	}
}

func (f *Fleet) fileScans(d int, r *rand.Rand, in *Installation, add addFunc, dt *DayTruth) {
	p := f.PKI
	signed := func(c *Cert, count int) {
		add("file_signature", map[string]any{
			"file.certificate":     c.Base64,
			"file.spki_sha256":     c.SPKISHA256,
			"file.thumbprint_sha1": c.SHA1,
			"event.count":          count,
		})
	}
	n := r.IntN(4)
	seen := make(map[int]bool, n)
	for range n {
		i := f.signerDist.draw(r)
		if seen[i] {
			continue
		}
		seen[i] = true
		signed(p.Signers[i], 1+int(r.ExpFloat64()*10))
	}
	if in.StolenFrom >= 0 && d >= in.StolenFrom && r.Float64() < 0.85 {
		signed(p.Stolen, 1+r.IntN(3))
		dt.StolenSigner++
	}
}

func seconds(r *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+r.IntN(hi-lo+1))*time.Second + time.Duration(r.IntN(1000))*time.Millisecond
}

// hexID draws a 128-bit id as 32 lowercase hex digits, valid as an event
// or batch id.
func hexID(r *rand.Rand) string {
	const hexdigits = "0123456789abcdef"
	var b [32]byte
	a, c := r.Uint64(), r.Uint64()
	for i := range 16 {
		b[i] = hexdigits[(a>>(4*i))&0xf]
		b[16+i] = hexdigits[(c>>(4*i))&0xf]
	}
	return string(b[:])
}
