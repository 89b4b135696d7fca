package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/sqlite"
)

// dataFile is the embedded store's file inside a --data directory.
const dataFile = "provision.db"

// openRollupData opens the embedded store of dir: its log and its rollups.
func openRollupData(ctx context.Context, dir string) (*sqlite.Store, *sqlite.RollupStore, error) {
	if dir == "" {
		return nil, nil, fmt.Errorf("--data: missing")
	}
	path := filepath.Join(dir, dataFile)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("--data: no store at %s: %w", path, err)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	return st, sqlite.NewRollupStore(st.DB()), nil
}

func newRollupCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollup",
		Short: "Build the rollups that reports and the dashboard read",
		Long: `rollup folds the event log into per-day cells of counters and sketches.
update applies what the log gained since the last run; rebuild drops every
rollup and replays the whole log, with the same result.`,
	}
	var dir string
	var batch int
	run := func(rebuild bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, rs, err := openRollupData(ctx, dir)
			if err != nil {
				return err
			}
			defer st.Close()
			u := &rollup.Updater{Log: st, Store: rs, Batch: batch}
			var stats rollup.Stats
			if rebuild {
				stats, err = u.Rebuild(ctx)
			} else {
				stats, err = u.Update(ctx)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rollup: %d records in %d transactions, through log position %d\n", stats.Records, stats.Applies, stats.Through)
			if stats.Skipped > 0 {
				fmt.Fprintf(e.stdout, "rollup: %d records had an unreadable certificate and were counted without it\n", stats.Skipped)
			}
			return nil
		}
	}
	for _, sub := range []*cobra.Command{
		{Use: "update", Short: "Apply the log records added since the last update", Args: cobra.NoArgs, RunE: run(false)},
		{Use: "rebuild", Short: "Drop the rollups and build them again from the whole log", Args: cobra.NoArgs, RunE: run(true)},
	} {
		sub.Flags().StringVar(&dir, "data", "", "data `DIR` of the embedded store")
		sub.Flags().IntVar(&batch, "batch", rollup.DefaultBatch, "log records per transaction")
		cmd.AddCommand(sub)
	}
	return cmd
}
