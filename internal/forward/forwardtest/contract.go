package forwardtest

import (
	"context"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/forward"
)

// TestState is the contract every forward.State implementation must meet.
// Call it with a function returning a fresh, empty state.
func TestState(t *testing.T, open func(t *testing.T) forward.State) {
	ctx := context.Background()
	const (
		ga  = "google_analytics"
		tp  = "third_party"
		id1 = "6f1c1f1e-8a7b-4c55-9d1e-0a0b0c0d0e01"
		id2 = "6f1c1f1e-8a7b-4c55-9d1e-0a0b0c0d0e02"
	)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

	t.Run("sent markers", func(t *testing.T) {
		st := open(t)
		mustSent(t, st, ga, id1, "2026-11-28", false)
		if err := st.MarkSent(ctx, ga, id1, "2026-11-28", at); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkSent(ctx, ga, id1, "2026-11-28", at); err != nil {
			t.Fatalf("marking twice: %v", err)
		}
		mustSent(t, st, ga, id1, "2026-11-28", true)
		mustSent(t, st, tp, id1, "2026-11-28", false) // per recipient
		mustSent(t, st, ga, id1, "2026-11-29", false) // per day
		mustSent(t, st, ga, id2, "2026-11-28", false) // per installation
		if err := st.MarkSent(ctx, ga, id2, "2026-11-29", at); err != nil {
			t.Fatal(err)
		}
		n, err := st.PruneSent(ctx, "2026-11-29")
		if err != nil || n != 1 {
			t.Fatalf("PruneSent = %d, %v; want 1", n, err)
		}
		mustSent(t, st, ga, id1, "2026-11-28", false)
		mustSent(t, st, ga, id2, "2026-11-29", true)
	})

	t.Run("dead letters", func(t *testing.T) {
		st := open(t)
		for i, r := range []string{ga, tp, ga} {
			dl := &forward.DeadLetter{Recipient: r, InstallationID: id1, Day: "2026-11-28", Seq: int64(i + 1),
				Count: []byte(`{"seq":1}`), Attempts: 3, Reason: "retryable: HTTP 503", Retryable: i == 0, CreatedAt: at}
			if err := st.AddDeadLetter(ctx, dl); err != nil {
				t.Fatal(err)
			}
			if dl.ID == 0 {
				t.Fatal("AddDeadLetter did not set an ID")
			}
		}
		got, err := st.DeadLetters(ctx, ga, 10)
		if err != nil || len(got) != 2 {
			t.Fatalf("DeadLetters = %d, %v; want 2", len(got), err)
		}
		if got[0].Seq != 1 || got[1].Seq != 3 || !got[0].Retryable || got[1].Retryable ||
			string(got[0].Count) != `{"seq":1}` || got[0].Attempts != 3 || got[0].Reason != "retryable: HTTP 503" ||
			got[0].Day != "2026-11-28" || got[0].InstallationID != id1 || !got[0].CreatedAt.Equal(at) {
			t.Fatalf("DeadLetters = %+v", got)
		}
		if lim, _ := st.DeadLetters(ctx, ga, 1); len(lim) != 1 {
			t.Fatalf("limit 1 gave %d", len(lim))
		}
		if n, err := st.CountDeadLetters(ctx, tp); err != nil || n != 1 {
			t.Fatalf("CountDeadLetters(tp) = %d, %v", n, err)
		}
		if err := st.DeleteDeadLetter(ctx, ga, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteDeadLetter(ctx, ga, got[0].ID); err != nil {
			t.Fatalf("deleting twice: %v", err)
		}
		if n, _ := st.CountDeadLetters(ctx, ga); n != 1 {
			t.Fatalf("after delete: %d dead letters, want 1", n)
		}
	})

	t.Run("forget", func(t *testing.T) {
		st := open(t)
		_ = st.MarkSent(ctx, ga, id1, "2026-11-28", at)
		_ = st.MarkSent(ctx, ga, id2, "2026-11-28", at)
		_ = st.AddDeadLetter(ctx, &forward.DeadLetter{Recipient: tp, InstallationID: id1, Day: "2026-11-28", Count: []byte(`{}`), CreatedAt: at})
		_ = st.AddDeadLetter(ctx, &forward.DeadLetter{Recipient: tp, InstallationID: id2, Day: "2026-11-28", Count: []byte(`{}`), CreatedAt: at})
		if err := st.Forget(ctx, id1); err != nil {
			t.Fatal(err)
		}
		mustSent(t, st, ga, id1, "2026-11-28", false)
		mustSent(t, st, ga, id2, "2026-11-28", true)
		dls, _ := st.DeadLetters(ctx, tp, 10)
		if len(dls) != 1 || dls[0].InstallationID != id2 {
			t.Fatalf("after Forget: %+v", dls)
		}
	})
}

func mustSent(t *testing.T, st forward.State, recipient, id, day string, want bool) {
	t.Helper()
	got, err := st.Sent(context.Background(), recipient, id, day)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Sent(%s, %s) = %v, want %v", recipient, day, got, want)
	}
}
