package backend

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/privacy"
)

// The notice queue of each store: a claimed notice is not claimed again
// until its lease ends, a queued notice is queued once, a deferral keeps
// the id, a confirmation clears it.
func TestNoticeQueue(t *testing.T) {
	eachEngine(t, func(t *testing.T, opts Options) {
		ctx := context.Background()
		b, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		q, ok := b.Privacy.(privacy.NoticeStore)
		if !ok {
			t.Fatal("the store keeps no notice queue")
		}
		const id = "7c1f3a52-9d0e-4b8a-a1c2-3e4f5a6b7c8d"
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for range 2 {
			if err := q.EnqueueNotices(ctx, "r1", id, []string{"google_analytics", "third_party"}, now); err != nil {
				t.Fatal(err)
			}
		}
		lease := now.Add(time.Minute)
		got, err := q.ClaimNotices(ctx, now, lease, 10)
		if err != nil || len(got) != 2 || got[0].InstallationID != id {
			t.Fatalf("claim = %+v %v, want both notices with the id", got, err)
		}
		if again, err := q.ClaimNotices(ctx, now.Add(time.Second), lease, 10); err != nil || len(again) != 0 {
			t.Fatalf("claimed again during the lease: %+v %v", again, err)
		}
		if err := q.DeferNotice(ctx, "r1", "third_party", 1, now.Add(time.Hour), "answer 503"); err != nil {
			t.Fatal(err)
		}
		if err := q.ConfirmNotice(ctx, "r1", "google_analytics", now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if again, err := q.ClaimNotices(ctx, lease.Add(time.Second), lease.Add(time.Minute), 10); err != nil || len(again) != 0 {
			t.Fatalf("after the lease: %+v %v, want none (one confirmed, one deferred)", again, err)
		}
		ns, err := q.Notices(ctx, "r1")
		if err != nil || len(ns) != 2 {
			t.Fatalf("notices = %+v %v", ns, err)
		}
		if n := ns[0]; n.Recipient != "google_analytics" || n.State != privacy.NoticeConfirmed || n.InstallationID != "" || !n.ConfirmedAt.Equal(now.Add(2*time.Second)) {
			t.Errorf("confirmed = %+v", n)
		}
		if n := ns[1]; n.State != privacy.NoticePending || n.InstallationID != id || n.Attempts != 1 || n.LastError != "answer 503" || !n.NextAt.Equal(now.Add(time.Hour)) {
			t.Errorf("deferred = %+v", n)
		}
		if late, err := q.ClaimNotices(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 10); err != nil || len(late) != 1 || late[0].Recipient != "third_party" {
			t.Errorf("claim once due again = %+v %v", late, err)
		}
	})
}
