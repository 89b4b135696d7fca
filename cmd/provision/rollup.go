package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/rollup"
)

func newRollupCmd(e *env) *cobra.Command {
	var so storeFlags
	var batch int
	run := func(rebuild bool) func(*cobra.Command, []string) error {
		return withBackend(&so, e, func(cmd *cobra.Command, b *backend.Backend, _ []string) error {
			u := b.Updater(nil)
			u.Batch = batch
			var stats rollup.Stats
			var err error
			if rebuild {
				stats, err = u.Rebuild(cmd.Context())
			} else {
				stats, err = u.Update(cmd.Context())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rollup: %d records in %d transactions, through log position %d\n", stats.Records, stats.Applies, stats.Through)
			if stats.Skipped > 0 {
				fmt.Fprintf(e.stdout, "rollup: %d records had an unreadable certificate and were counted without it\n", stats.Skipped)
			}
			return nil
		})
	}
	subs := []*cobra.Command{
		{Use: "update", Short: "Apply the log records added since the last update", Args: cobra.NoArgs, RunE: run(false)},
		{Use: "rebuild", Short: "Drop the rollups and build them again from the whole log", Args: cobra.NoArgs, RunE: run(true)},
	}
	for _, sub := range subs {
		so.register(sub, "rollup")
		sub.Flags().IntVar(&batch, "batch", rollup.DefaultBatch, "log records per transaction")
	}
	return group("rollup", "Build the rollups that reports and the dashboard read",
		`rollup folds the event log into per-day cells of counters and sketches.
update applies what the log gained since the last run; rebuild drops every
rollup and replays the whole log, with the same result.`, subs...)
}
