package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/server"
)

func newPrivacyCmd(e *env) *cobra.Command {
	return group("privacy", "Erase, export and purge what is held for installations",
		"Operator commands for the rights the data-provision terms give: erasure\n"+
			"with a receipt, export of everything held for an installation, retention\n"+
			"purges, and the erasure audit log. They work on the server's store\n"+
			"(--data DIR, --store sqlite:DIR or postgres://…). See docs/privacy.md.",
		newPrivacyEraseCmd(e), newPrivacyStatusCmd(e), newPrivacyExportCmd(e),
		newPrivacyPurgeCmd(e), newPrivacyAuditCmd(e), newPrivacyTokenCmd(e))
}

// privacyStore is what a privacy command works on: the open backend, the
// privacy service over it, the manifest, the owners of the backend's copies
// and the refresher that erasures mark the days they touched with.
type privacyStore struct {
	*backend.Backend
	svc     *privacy.Service
	m       *manifest.Manifest
	owners  *privacy.Registry
	refresh *rollup.Refresher
	// forwardConfig, for erase, names the recipients to tell.
	forwardConfig string
}

// withPrivacy registers the store flags on cmd and sets its body, which runs
// with the store open. The store must exist: these commands never create an
// empty store by mistake.
func withPrivacy(cmd *cobra.Command, e *env, body func(cmd *cobra.Command, p *privacyStore, args []string) error) *cobra.Command {
	var so storeFlags
	so.register(cmd, "privacy")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		m, err := loadManifest(cmd)
		if err != nil {
			return err
		}
		b, err := so.open(cmd.Context(), e)
		if err != nil {
			return err
		}
		defer b.Close()
		p := &privacyStore{Backend: b, m: m, refresh: b.Refresher(nil)}
		if fl := cmd.Flags().Lookup("forward-config"); fl != nil {
			p.forwardConfig = fl.Value.String()
		}
		recipients, err := server.RecipientOwners(p.forwardConfig, e.getenv)
		if err != nil {
			return err
		}
		if p.svc, p.owners, err = b.PrivacyService(m, nil, p.refresh, recipients...); err != nil {
			return err
		}
		return body(cmd, p, args)
	}
	return cmd
}

func newPrivacyEraseCmd(e *env) *cobra.Command {
	var (
		id, reqID string
		rebuild   bool
	)
	cmd := withPrivacy(&cobra.Command{
		Use:   "erase --installation ID --data DIR",
		Short: "Erase everything held for an installation and print the receipt",
		Long: "Removes every raw event and every other row linked to the installation,\n" +
			"records a tombstone (the SHA-256 of the id) so that nothing of it is stored,\n" +
			"forwarded or counted again, appends an entry to the audit log and prints the\n" +
			"receipt as JSON. Erasures left pending by an interrupted run are finished too.",
		Args: cobra.NoArgs,
	}, e, func(cmd *cobra.Command, p *privacyStore, _ []string) error {
		if _, err := p.svc.Resume(cmd.Context()); err != nil {
			return err
		}
		rec, err := p.svc.Erase(cmd.Context(), id, reqID, privacy.SourceOperator)
		if err != nil {
			return err
		}
		if n := p.svc.Notifier(); n != nil && p.forwardConfig != "" {
			// One attempt now; a recipient that does not confirm keeps
			// its notice queued for the server's notices job.
			if _, err := n.Deliver(cmd.Context()); err != nil {
				return err
			}
			if rec, err = p.svc.Status(cmd.Context(), rec.ID); err != nil {
				return err
			}
		}
		if err := printJSON(e.stdout, rec); err != nil {
			return err
		}
		if !rebuild {
			// Recompute the rollups of the days the erasure touched, so
			// no count or dimension value still includes it.
			if p.refresh != nil {
				if _, err := p.refresh.Refresh(cmd.Context()); err != nil {
					return err
				}
			}
			return nil
		}
		// A HyperLogLog sketch cannot forget one installation: build
		// the rollups again from the log, which no longer holds it.
		stats, err := p.Updater(nil).Rebuild(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "rollups rebuilt from %d records\n", stats.Records)
		return nil
	})
	cmd.Flags().StringVar(&id, "installation", "", "installation `ID` to erase")
	cmd.Flags().StringVar(&reqID, "request-id", "", "request `ID` for the receipt (default: a new random one)")
	cmd.Flags().String("forward-config", "", "the server's forwarders' YAML `FILE`: its recipients are told of the erasure (once now; the server's notices job retries)")
	cmd.Flags().BoolVar(&rebuild, "rebuild-rollups", false, "then rebuild the rollups from the log, so no sketch still counts the installation")
	_ = cmd.MarkFlagRequired("installation")
	return cmd
}

func newPrivacyStatusCmd(e *env) *cobra.Command {
	return withPrivacy(&cobra.Command{
		Use:   "status REQUEST_ID --data DIR",
		Short: "Tell whether an erasure request is complete and print its receipt",
		Long:  "Prints the request as JSON. Exit status 1 means it is still pending.",
		Args:  cobra.ExactArgs(1),
	}, e, func(cmd *cobra.Command, p *privacyStore, args []string) error {
		rec, err := p.svc.Status(cmd.Context(), args[0])
		if errors.Is(err, provision.ErrNotFound) {
			return fmt.Errorf("no erasure request %q", args[0])
		}
		if err != nil {
			return err
		}
		if err := printJSON(e.stdout, rec); err != nil {
			return err
		}
		if rec.Status != privacy.StatusComplete {
			return &findingError{msg: "erasure " + rec.ID + " is " + rec.Status}
		}
		return nil
	})
}

func newPrivacyExportCmd(e *env) *cobra.Command {
	var id, out string
	cmd := withPrivacy(&cobra.Command{
		Use:   "export --installation ID --data DIR",
		Short: "Write everything held for an installation as JSON, grouped by manifest item",
		Long: "Writes every stored value of the installation under the manifest item it\n" +
			"belongs to, with the item's description, category and retention, the region\n" +
			"profile of each submission and the other records that name it, so that it\n" +
			"can be handed to the person it concerns.",
		Args: cobra.NoArgs,
	}, e, func(cmd *cobra.Command, p *privacyStore, _ []string) error {
		x, err := p.svc.Export(cmd.Context(), id)
		if err != nil {
			return err
		}
		if out == "" || out == "-" {
			return privacy.WriteExport(e.stdout, x)
		}
		// The export is personal data: only the operator may read it.
		file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := privacy.WriteExport(file, x); err != nil {
			file.Close()
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s: %d items\n", out, len(x.Items))
		return nil
	})
	cmd.Flags().StringVar(&id, "installation", "", "installation `ID` to export")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to `FILE` (mode 0600) instead of standard output")
	_ = cmd.MarkFlagRequired("installation")
	return cmd
}

func newPrivacyPurgeCmd(e *env) *cobra.Command {
	return withPrivacy(&cobra.Command{
		Use:   "purge --data DIR",
		Short: "Run one retention pass: purge raw data older than the manifest's retention",
		Long: "Strips each item from stored events once its retention_days have passed and\n" +
			"deletes events once every item's retention has passed, in small transactions.\n" +
			"The server runs the same job in the background; this runs one pass now. It\n" +
			"also finishes erasures left pending.",
		Args: cobra.NoArgs,
	}, e, func(cmd *cobra.Command, p *privacyStore, _ []string) error {
		if _, err := p.svc.Resume(cmd.Context()); err != nil {
			return err
		}
		job := &privacy.Retention{Store: p.Privacy, Manifest: p.m, Owners: p.owners}
		stats, err := job.RunOnce(cmd.Context())
		if err != nil {
			return err
		}
		return printJSON(e.stdout, map[string]any{"purged_events": stats.Purged, "stripped_events": stats.Stripped, "transactions": stats.Chunks, "owners": stats.Owners})
	})
}

func newPrivacyAuditCmd(e *env) *cobra.Command {
	return withPrivacy(&cobra.Command{
		Use:   "audit --data DIR",
		Short: "Print the erasure audit log and verify its hash chain",
		Long: "Prints one JSON line per erasure (request, time, SHA-256 of the installation\n" +
			"id, counts removed) and checks the chain. Exit status 1 means the chain is\n" +
			"broken: an entry was altered or removed.",
		Args: cobra.NoArgs,
	}, e, func(cmd *cobra.Command, p *privacyStore, _ []string) error {
		if err := printAudit(cmd.Context(), e, p.Privacy); err != nil {
			return err
		}
		n, err := privacy.VerifyAudit(cmd.Context(), p.Privacy)
		if err != nil {
			return &findingError{msg: err.Error()}
		}
		fmt.Fprintf(e.stderr, "audit log: %d entries, hash chain intact\n", n)
		return nil
	})
}

func printAudit(ctx context.Context, e *env, s privacy.Store) error {
	enc := json.NewEncoder(e.stdout)
	var after int64
	for {
		entries, err := s.Audit(ctx, after, 1000)
		if err != nil {
			return err
		}
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				return err
			}
			after = entries[i].Seq
		}
		if len(entries) < 1000 {
			return nil
		}
	}
}

func newPrivacyTokenCmd(e *env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "token --data DIR",
		Short: "Make a new bearer token for the operator endpoints and print it once",
		Long: "Writes the SHA-256 of a new random token to DIR/" + privacy.TokenFile + " (replacing\n" +
			"the previous token) and prints the token. It is stored nowhere else: keep it.",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if dir == "" {
				dir = e.getenv("PROVISION_DATA")
			}
			if dir == "" {
				return errors.New("--data DIR (or PROVISION_DATA) is required: the server's data directory, where the token's hash is kept")
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			token, err := privacy.NewToken(dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, token)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the server's data `DIR`, where the token's hash is kept (env PROVISION_DATA)")
	return cmd
}
