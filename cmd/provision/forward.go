package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/manifest"
)

func newForwardCmd(e *env) *cobra.Command {
	return group("forward", "Pass the daily user count on to Google Analytics and the third-party provider",
		"The forwarders read the event log from their own checkpoints and send each\n"+
			"installation's user count, once a day, to the recipients the licence names —\n"+
			"only the fields the manifest declares for each. See docs/forwarding.md.",
		newForwardFieldsCmd(e), newForwardCheckCmd(e), newForwardStatusCmd(e))
}

func newForwardFieldsCmd(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "fields",
		Short: "Print which manifest items go to which recipient, and under which names",
		Args:  cobra.NoArgs,
		RunE: withManifest(func(_ *cobra.Command, m *manifest.Manifest, _ []string) error {
			return forward.WriteFieldTable(e.stdout, m, format)
		}),
	}
	cmd.Flags().StringVar(&format, "format", forward.FormatMarkdown, "output format: md, text or json")
	return cmd
}

// sampleInstallation is the client_id of the sample that check sends; the
// validation endpoint records nothing.
const sampleInstallation = "00000000-0000-4000-8000-000000000000"

func newForwardCheckCmd(e *env) *cobra.Command {
	var configPath, region string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Send a sample count to the Measurement Protocol validation endpoint and print its findings",
		Long: "Builds a sample user count with the fields the manifest declares for Google\n" +
			"Analytics in the region, sends it to /debug/mp/collect (which validates\n" +
			"without recording) and prints the validationMessages. Exit status 1 means\n" +
			"the validation server found something.",
		Args: cobra.NoArgs,
		RunE: withManifest(func(cmd *cobra.Command, m *manifest.Manifest, _ []string) error {
			cfg, err := forward.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if cfg.GoogleAnalytics == nil {
				return fmt.Errorf("%s: no google_analytics section", configPath)
			}
			only := *cfg
			only.ThirdParty = nil
			senders, err := only.Senders(e.getenv)
			if err != nil {
				return err
			}
			ga := senders[0].(*forward.GA4)
			sample := map[string]any{
				"software.name":      "Provision check",
				"software.version":   "0.0.0",
				"os.version":         "check",
				"os.update_packages": []any{"KB0000001", "KB0000002"},
			}
			c := &forward.Count{
				InstallationID: sampleInstallation, Region: region, Time: time.Now(), Day: time.Now().UTC().Format("2006-01-02"),
				Fields: forward.SelectFields(m, provision.RecipientGoogleAnalytics, region, sampleInstallation, sample),
			}
			body, err := ga.Body(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "sample: %s\n", body)
			msgs, err := ga.Check(cmd.Context(), c)
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				fmt.Fprintln(e.stdout, "validation: no messages, the sample is valid")
				return nil
			}
			out, _ := json.MarshalIndent(msgs, "", "  ")
			fmt.Fprintf(e.stdout, "validationMessages: %s\n", out)
			return &findingError{msg: fmt.Sprintf("%d validation message(s)", len(msgs))}
		}),
	}
	cmd.Flags().StringVar(&configPath, "config", "", "forwarding configuration `FILE` (YAML)")
	cmd.Flags().StringVar(&region, "region", provision.RegionEU, "region whose declarations the sample follows: eu, uk, br or us-ca")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
