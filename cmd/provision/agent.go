package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/provisionhq/provision/agent"
)

// agentConfigFile is the agent's optional configuration, looked for in the
// state directory when --config is not given.
const agentConfigFile = "agent.yaml"

// agentFileConfig is what the agent configuration file may say.
type agentFileConfig struct {
	Software            agent.Software `yaml:"software"`
	LicenseProviderSite string         `yaml:"license_provider_site"`
	Server              string         `yaml:"server"`
	CA                  string         `yaml:"ca"`
	Pin                 string         `yaml:"pin"`
}

// agentOptions are the flags every agent command shares.
type agentOptions struct {
	state  string
	config string
}

func (o *agentOptions) stateDir(e *env) (string, error) {
	if o.state != "" {
		return o.state, nil
	}
	if dir := e.getenv("PROVISION_AGENT_STATE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no --state given and no user config directory: %w", err)
	}
	return filepath.Join(dir, "provision", "agent"), nil
}

func (o *agentOptions) fileConfig(state string) (agentFileConfig, error) {
	var fc agentFileConfig
	path, explicit := o.config, o.config != ""
	if !explicit {
		path = filepath.Join(state, agentConfigFile)
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return fc, nil
		}
		return fc, fmt.Errorf("agent config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(io.LimitReader(f, 1<<20))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, fmt.Errorf("agent config %s: %w", path, err)
	}
	return fc, nil
}

// open opens the agent on the state directory with the configuration file.
func (o *agentOptions) open(cmd *cobra.Command, e *env) (*agent.Agent, agentFileConfig, error) {
	state, err := o.stateDir(e)
	if err != nil {
		return nil, agentFileConfig{}, err
	}
	fc, err := o.fileConfig(state)
	if err != nil {
		return nil, fc, err
	}
	manifestFile, _ := cmd.Flags().GetString("manifest")
	a, err := agent.Open(agent.Config{
		StateDir:            state,
		ManifestFile:        manifestFile,
		Software:            fc.Software,
		LicenseProviderSite: fc.LicenseProviderSite,
	})
	return a, fc, err
}

// withAgent wraps a command body that needs an open agent.
func withAgent(o *agentOptions, e *env, body func(cmd *cobra.Command, a *agent.Agent, fc agentFileConfig, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, fc, err := o.open(cmd, e)
		if err != nil {
			return err
		}
		defer a.Close()
		return body(cmd, a, fc, args)
	}
}

func newAgentCmd(e *env) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Collect declared data with consent, keep it in the outbox, upload it and show what was sent",
	}
	cmd.PersistentFlags().StringVar(&o.state, "state", "", "state `DIR` holding the installation id, consent, outbox and sent log (default: the user's config dir, provision/agent)")
	cmd.PersistentFlags().StringVar(&o.config, "config", "", "agent configuration `FILE` (default: agent.yaml in the state dir, if present)")
	cmd.AddCommand(
		newAgentConsentCmd(o, e),
		newAgentCollectCmd(o, e),
		newAgentRecordCmd(o, e),
		newAgentRunTaskCmd(o, e),
		newAgentScanCmd(o, e),
		newAgentFlushCmd(o, e),
		newAgentRunCmd(o, e),
		newAgentSentCmd(o, e),
		newAgentStatusCmd(o, e),
	)
	return cmd
}

func newAgentConsentCmd(o *agentOptions, e *env) *cobra.Command {
	var region string
	accept := &cobra.Command{
		Use:   "accept --region eu|uk|br|us-ca",
		Short: "Accept the terms for a region; the first acceptance makes a new installation id",
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(_ *cobra.Command, a *agent.Agent, _ agentFileConfig, _ []string) error {
			c, err := a.Accept(region)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "accepted for region %s; installation id %s\n", c.Region, c.InstallationID)
			return nil
		}),
	}
	accept.Flags().StringVar(&region, "region", "", "region whose terms apply: eu, uk, br or us-ca")
	_ = accept.MarkFlagRequired("region")
	status := showCmd(o, e, &cobra.Command{
		Use:   "status",
		Short: "Show whether the terms are accepted, for which region, and the installation id",
		Args:  cobra.NoArgs,
	}, "print JSON", func(_ *cobra.Command, a *agent.Agent, _ []string) (agent.Consent, error) {
		return a.Consent()
	}, func(w io.Writer, c agent.Consent) {
		switch {
		case c.Accepted:
			fmt.Fprintf(w, "accepted for region %s on %s; installation id %s\n", c.Region, c.AcceptedAt.Format(time.RFC3339), c.InstallationID)
		case !c.WithdrawnAt.IsZero():
			fmt.Fprintf(w, "withdrawn on %s; nothing is collected\n", c.WithdrawnAt.Format(time.RFC3339))
		default:
			fmt.Fprintln(w, "not accepted; nothing is collected")
		}
	})
	withdraw := &cobra.Command{
		Use:   "withdraw",
		Short: "Withdraw consent: empty the outbox and queue a request to erase what was sent",
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(_ *cobra.Command, a *agent.Agent, _ agentFileConfig, _ []string) error {
			if _, err := a.Withdraw(); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "withdrawn; the outbox is empty and a deletion request is queued for the next flush")
			return nil
		}),
	}
	return group("consent", "Accept or withdraw the data-provision terms, or show the answer", "", accept, status, withdraw)
}

func newAgentCollectCmd(o *agentOptions, e *env) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Run the daily collectors and queue what changed; --dry-run prints what would be sent now",
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, _ agentFileConfig, _ []string) error {
			if dryRun {
				p, err := a.DryRun(cmd.Context(), agent.Upload{})
				if err != nil {
					return err
				}
				return printJSON(e.stdout, p)
			}
			rep, err := a.Collect(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, rep)
			}
			fmt.Fprintf(e.stdout, "queued: %s\n", listOrNone(rep.Queued))
			if len(rep.Unchanged) > 0 {
				fmt.Fprintf(e.stdout, "unchanged since the last collection today: %s\n", strings.Join(rep.Unchanged, ", "))
			}
			for _, s := range rep.Skipped {
				fmt.Fprintf(e.stdout, "skipped %s: %s\n", s.Type, s.Reason)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print, as JSON, exactly what a collection and upload would send now, and change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, ", ")
}

func newAgentRecordCmd(o *agentOptions, e *env) *cobra.Command {
	var ue agent.UIError
	errCmd := recordCmd(o, e, "error --type TYPE --code CODE [--control ID]",
		"Count an error; repeats in a period travel as one event with a count",
		func(ctx context.Context, a *agent.Agent) error { return a.RecordError(ctx, ue) })
	errCmd.Flags().StringVar(&ue.Type, "type", "", "kind of error, such as connection_failed")
	errCmd.Flags().StringVar(&ue.Code, "code", "", "the error code the application reports")
	errCmd.Flags().StringVar(&ue.ControlID, "control", "", "id of the control in use (never what was typed)")
	var t agent.Task
	taskCmd := recordCmd(o, e, "task --type install|remove|upgrade|update --status STATUS --duration D",
		"Record the outcome of an installation, removal, upgrade or update",
		func(ctx context.Context, a *agent.Agent) error { return a.RecordTask(ctx, t) })
	taskFlags(taskCmd, &t.Type, &t.CampaignID)
	taskCmd.Flags().StringVar(&t.Status, "status", "", "success, failure, cancelled or reboot_required")
	taskCmd.Flags().StringVar(&t.ErrorType, "error-type", "", "kind of error that stopped the task")
	taskCmd.Flags().StringVar(&t.ErrorCode, "error-code", "", "code of that error")
	taskCmd.Flags().DurationVar(&t.Duration, "duration", 0, "how long the task took, such as 42s")
	return group("record", "Record an error met by the application or the outcome of a task", "", errCmd, taskCmd)
}

// recordCmd is a command that records one thing with the agent.
func recordCmd(o *agentOptions, e *env, use, short string, record func(context.Context, *agent.Agent) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, _ agentFileConfig, _ []string) error {
			if err := record(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "recorded")
			return nil
		}),
	}
}

// showCmd sets the body of cmd: ask the agent for one value and print it
// with text, or as JSON with --json.
func showCmd[T any](o *agentOptions, e *env, cmd *cobra.Command, jsonHelp string,
	get func(cmd *cobra.Command, a *agent.Agent, args []string) (T, error), text func(w io.Writer, v T)) *cobra.Command {
	var asJSON bool
	cmd.RunE = withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, _ agentFileConfig, args []string) error {
		v, err := get(cmd, a, args)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(e.stdout, v)
		}
		text(e.stdout, v)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, jsonHelp)
	return cmd
}

func newAgentRunTaskCmd(o *agentOptions, e *env) *cobra.Command {
	var typ, campaign string
	cmd := &cobra.Command{
		Use:   "run-task --type install|remove|upgrade|update [--campaign ID] -- COMMAND [ARGS...]",
		Short: "Run an installer command, measure it and record its outcome and exit code",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, _ agentFileConfig, args []string) error {
			res, err := a.RunTask(cmd.Context(), agent.TaskRun{Type: typ, CampaignID: campaign, Command: args, Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr})
			if err != nil {
				return err
			}
			note := "recorded"
			if !res.Recorded {
				note = "not recorded: the terms are not accepted"
			}
			fmt.Fprintf(e.stderr, "provision: task %s: %s, exit code %d, %s (%s)\n", res.Task.Type, res.Task.Status, res.ExitCode, res.Task.Duration.Round(time.Millisecond), note)
			if res.RunErr != nil {
				return res.RunErr
			}
			if res.Task.Status != agent.TaskSuccess {
				return &findingError{msg: fmt.Sprintf("the task ended with %s (exit code %d)", res.Task.Status, res.ExitCode)}
			}
			return nil
		}),
	}
	taskFlags(cmd, &typ, &campaign)
	return cmd
}

// taskFlags are what names a task, the same for recording one and for
// running one.
func taskFlags(cmd *cobra.Command, typ, campaign *string) {
	cmd.Flags().StringVar(typ, "type", "", "install, remove, upgrade or update")
	cmd.Flags().StringVar(campaign, "campaign", "", "upgrade campaign id")
	_ = cmd.MarkFlagRequired("type")
}

func newAgentScanCmd(o *agentOptions, e *env) *cobra.Command {
	var serverName string
	var timeout time.Duration
	tlsCmd := showCmd(o, e, &cobra.Command{
		Use:   "tls HOST:PORT",
		Short: "Connect, read the chain the server presents and count it",
		Args:  cobra.ExactArgs(1),
	}, "print JSON", func(cmd *cobra.Command, a *agent.Agent, args []string) (agent.TLSObservation, error) {
		return a.ScanTLS(cmd.Context(), args[0], serverName, timeout)
	}, func(w io.Writer, obs agent.TLSObservation) {
		fmt.Fprintf(w, "recorded %s (SPKI SHA-256 %s), %d certificates, trusted: %v\n", obs.Subject, obs.SPKISHA256, obs.Certificates, obs.Trusted)
	})
	tlsCmd.Flags().StringVar(&serverName, "server-name", "", "name to send as SNI (default: the host)")
	tlsCmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "connection and handshake timeout")
	fileCmd := showCmd(o, e, &cobra.Command{
		Use:   "file PATH",
		Short: "Read the Authenticode signers of a file, or of every file under a directory, and count them",
		Args:  cobra.ExactArgs(1),
	}, "print JSON", func(cmd *cobra.Command, a *agent.Agent, args []string) (agent.FileReport, error) {
		return a.ScanFile(cmd.Context(), args[0])
	}, func(w io.Writer, rep agent.FileReport) {
		for _, s := range rep.Signatures {
			fmt.Fprintf(w, "%s: %s (SPKI SHA-256 %s), digest valid: %v\n", s.Path, s.Subject, s.SPKISHA256, s.DigestValid)
		}
		for _, f := range rep.Failed {
			fmt.Fprintf(w, "%s: %s\n", f.Path, f.Error)
		}
		fmt.Fprintf(w, "%d files, %d signed, %d signatures recorded, %d not PE images, %d unreadable\n", rep.Files, rep.Signed, rep.Recorded, rep.NotPE, len(rep.Failed))
	})
	return group("scan", "Record the certificates of a TLS server or the signers of files", "", tlsCmd, fileCmd)
}

func newAgentFlushCmd(o *agentOptions, e *env) *cobra.Command {
	var up agent.Upload
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "flush --server URL [--ca FILE] [--pin SPKI_SHA256]",
		Short: "Upload the waiting deletion requests and events now",
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, fc agentFileConfig, _ []string) error {
			if err := fillUpload(&up, fc); err != nil {
				return err
			}
			rep, err := a.Flush(cmd.Context(), up)
			if asJSON {
				if perr := printJSON(e.stdout, rep); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintf(e.stdout, "sent %d batches (%d bytes): %d events accepted, %d rejected, %d batches refused; %d deletion requests\n",
					rep.Batches, rep.WireBytes, rep.Accepted, rep.Rejected, rep.Refused, rep.Deletions)
			}
			return err
		}),
	}
	registerUpload(cmd, &up)
	cmd.Flags().IntVar(&up.MaxAttempts, "attempts", 5, "tries per request before leaving the data for the next flush")
	cmd.Flags().DurationVar(&up.MaxWait, "max-wait", 2*time.Minute, "longest wait between tries that this flush accepts")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// registerUpload adds the flags that say where and how to upload.
func registerUpload(cmd *cobra.Command, up *agent.Upload) {
	cmd.Flags().StringVar(&up.Server, "server", "", "server `URL` (https only)")
	cmd.Flags().StringVar(&up.CAFile, "ca", "", "PEM `FILE` of the roots that sign the server's certificate")
	cmd.Flags().StringVar(&up.Pin, "pin", "", "hex SHA-256 of the server certificate's public key (SPKI), checked in addition")
	cmd.Flags().StringVar(&up.Encoding, "encoding", "gzip", "body encoding: gzip, zstd or identity")
}

// fillUpload takes from the agent configuration file what the flags left
// unsaid; a server must be named by one or the other.
func fillUpload(up *agent.Upload, fc agentFileConfig) error {
	up.Server, up.CAFile, up.Pin = cmp.Or(up.Server, fc.Server), cmp.Or(up.CAFile, fc.CA), cmp.Or(up.Pin, fc.Pin)
	if up.Server == "" {
		return errors.New("no server: give --server URL or server: in the agent config")
	}
	return nil
}

func newAgentRunCmd(o *agentOptions, e *env) *cobra.Command {
	var up agent.Upload
	cmd := &cobra.Command{
		Use:   "run --server URL [--ca FILE] [--pin SPKI_SHA256] [--interval D]",
		Short: "Collect and upload in the background, at jittered intervals, until stopped",
		Args:  cobra.NoArgs,
		RunE: withAgent(o, e, func(cmd *cobra.Command, a *agent.Agent, fc agentFileConfig, _ []string) error {
			if err := fillUpload(&up, fc); err != nil {
				return err
			}
			err := a.Run(cmd.Context(), up)
			if errors.Is(err, context.Canceled) {
				return nil // stopped by a signal: a normal end
			}
			return err
		}),
	}
	registerUpload(cmd, &up)
	cmd.Flags().DurationVar(&up.Interval, "interval", agent.DefaultInterval, "average time between uploads (jittered; never a divisor of 24h)")
	return cmd
}

func newAgentSentCmd(o *agentOptions, e *env) *cobra.Command {
	var last int
	cmd := showCmd(o, e, &cobra.Command{
		Use:   "sent [--last N] [--json]",
		Short: "Show what left this machine: every batch and deletion request sent, with the server's answer",
		Args:  cobra.NoArgs,
	}, "print JSON, with each batch exactly as sent", func(_ *cobra.Command, a *agent.Agent, _ []string) ([]agent.SentEntry, error) {
		return a.Sent(last)
	}, func(w io.Writer, entries []agent.SentEntry) {
		if len(entries) == 0 {
			fmt.Fprintln(w, "nothing was sent")
		}
		for _, en := range entries {
			writeSentEntry(w, &en)
		}
	})
	cmd.Flags().IntVar(&last, "last", 0, "show only the last N entries")
	return cmd
}

// writeSentEntry prints one sent-log entry for a person: the answer, then
// every event with every field.
func writeSentEntry(w io.Writer, en *agent.SentEntry) {
	if en.Kind == "deletion" {
		fmt.Fprintf(w, "%s  deletion request %s for the withdrawn installation to %s: %s\n", en.SentAt.Format(time.RFC3339), en.RequestID, en.Server, en.Status)
		if en.Error != nil {
			fmt.Fprintf(w, "    refused: %s: %s\n", en.Error.Code, en.Error.Message)
		}
		return
	}
	fmt.Fprintf(w, "%s  batch %s to %s: %s, %d events, %d bytes (%s, %d uncompressed)\n",
		en.SentAt.Format(time.RFC3339), en.BatchID, en.Server, en.Status, en.Events, en.WireBytes, en.Encoding, en.RawBytes)
	if en.Error != nil {
		fmt.Fprintf(w, "    refused: %s: %s\n", en.Error.Code, en.Error.Message)
	}
	for _, r := range en.Rejected {
		fmt.Fprintf(w, "    event %d (%s) rejected: %s: %s\n", r.Index, r.Type, r.Code, r.Message)
	}
	var b struct {
		InstallationID string `json:"installation_id"`
		Region         string `json:"region"`
		Events         []struct {
			Type   string                     `json:"type"`
			Time   time.Time                  `json:"time"`
			Fields map[string]json.RawMessage `json:"fields"`
		} `json:"events"`
	}
	if err := json.Unmarshal(en.Batch, &b); err != nil {
		return
	}
	fmt.Fprintf(w, "    installation %s, region %s\n", b.InstallationID, b.Region)
	for i, ev := range b.Events {
		fmt.Fprintf(w, "    [%d] %s at %s\n", i, ev.Type, ev.Time.Format(time.RFC3339))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, k := range sortedKeys(ev.Fields) {
			fmt.Fprintf(tw, "        %s\t%s\n", k, shorten(ev.Fields[k]))
		}
		tw.Flush()
	}
}

// shorten keeps long values (certificates) readable on a terminal; --json
// shows them whole.
func shorten(v json.RawMessage) string {
	s := string(bytes.TrimSpace(v))
	if len(s) > 100 {
		return fmt.Sprintf("%s… (%d characters)", s[:80], len(s))
	}
	return s
}

func sortedKeys(m map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(m))
}

func newAgentStatusCmd(o *agentOptions, e *env) *cobra.Command {
	return showCmd(o, e, &cobra.Command{
		Use:   "status",
		Short: "Show consent and what waits in the outbox",
		Args:  cobra.NoArgs,
	}, "print JSON", func(_ *cobra.Command, a *agent.Agent, _ []string) (agent.Status, error) {
		return a.Status()
	}, func(w io.Writer, st agent.Status) {
		fmt.Fprintf(w, "consent accepted: %v (region %s)\n", st.Consent.Accepted, st.Consent.Region)
		fmt.Fprintf(w, "waiting: %d events, %d bytes; in flight: %v; deletion requests: %d; dropped by bounds: %d\n",
			st.Events, st.Bytes, st.Inflight, st.Deletions, st.Dropped)
	})
}
