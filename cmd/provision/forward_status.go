package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/forward"
)

// forwardReport is what `provision forward status` prints: each
// forwarder's persistent state and its oldest dead letters. Installation
// ids are never printed.
type forwardReport struct {
	Forwarders  []forward.Status           `json:"forwarders"`
	DeadLetters map[string][]deadLetterRow `json:"dead_letters"`
	Healthy     bool                       `json:"healthy"`
}

type deadLetterRow struct {
	ID        int64     `json:"id"`
	Day       string    `json:"day"`
	Seq       int64     `json:"seq"`
	Attempts  int       `json:"attempts"`
	Retryable bool      `json:"retryable"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// maxListedDeadLetters bounds the dead letters listed per recipient.
const maxListedDeadLetters = 20

// inspectForwarders reads the state of every forwarder from the store.
func inspectForwarders(ctx context.Context, log provision.Log, cps provision.Checkpoints, st forward.State, maxLag int64) (*forwardReport, error) {
	rep := &forwardReport{DeadLetters: map[string][]deadLetterRow{}, Healthy: true}
	for _, r := range forward.Recipients {
		s := forward.Inspect(ctx, r, "forward."+r, maxLag, log, cps, st)
		rep.Healthy = rep.Healthy && s.Healthy
		rep.Forwarders = append(rep.Forwarders, s)
		dls, err := st.DeadLetters(ctx, r, maxListedDeadLetters)
		if err != nil {
			return nil, fmt.Errorf("dead letters of %s: %w", r, err)
		}
		for _, dl := range dls {
			rep.DeadLetters[r] = append(rep.DeadLetters[r], deadLetterRow{ID: dl.ID, Day: dl.Day, Seq: dl.Seq,
				Attempts: dl.Attempts, Retryable: dl.Retryable, Reason: dl.Reason, CreatedAt: dl.CreatedAt})
		}
	}
	return rep, nil
}

func (rep *forwardReport) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "text", "":
	default:
		return fmt.Errorf("unknown format %q (text or json)", format)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tCHECKPOINT\tHEAD\tLAG\tDEAD LETTERS\tHEALTHY")
	for _, s := range rep.Forwarders {
		health := "yes"
		if !s.Healthy {
			health = "no: " + strings.Join(s.Problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Recipient, s.Checkpoint, s.Head, s.Lag, s.DeadLetters, health)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Forwarders {
		rows := rep.DeadLetters[s.Recipient]
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\ndead letters of %s (oldest %d of %d):\n", s.Recipient, len(rows), s.DeadLetters)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tDAY\tLOG SEQ\tATTEMPTS\tWILL RETRY\tREASON")
		for _, r := range rows {
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%v\t%s\n", r.ID, r.Day, r.Seq, r.Attempts, r.Retryable, r.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func newForwardStatusCmd(e *env) *cobra.Command {
	var (
		so     storeFlags
		format string
		maxLag int64
	)
	cmd := &cobra.Command{
		Use:   "status --data DIR | --store URL",
		Short: "Print each forwarder's checkpoint, lag and oldest dead letters",
		Long: "Reads the forwarders' state from the store, without a running server.\n" +
			"Installation ids are never printed. Exit status 1 means a forwarder is\n" +
			"behind by more than --max-lag records or has dead letters.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			return checkFormat(format, []string{"text", "json"})
		},
		RunE: withBackend(&so, e, func(cmd *cobra.Command, b *backend.Backend, _ []string) error {
			rep, err := inspectForwarders(cmd.Context(), b.Stored, b.StoredCheckpoints, b.Forward, maxLag)
			if err != nil {
				return err
			}
			if err := rep.write(e.stdout, format); err != nil {
				return err
			}
			if !rep.Healthy {
				return &findingError{msg: "a forwarder is unhealthy"}
			}
			return nil
		}),
	}
	so.register(cmd, "forward")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().Int64Var(&maxLag, "max-lag", 10000, "lag in log records above which a forwarder is reported unhealthy")
	return cmd
}
