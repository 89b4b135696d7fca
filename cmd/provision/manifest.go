package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/limitread"
	"github.com/provisionhq/provision/internal/manifest"
)

// maxEventDocument bounds what validate-event reads.
const maxEventDocument = 8 << 20

// withManifest wraps a command body that needs the manifest.
func withManifest(body func(cmd *cobra.Command, m *manifest.Manifest, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		m, err := loadManifest(cmd)
		if err != nil {
			return err
		}
		return body(cmd, m, args)
	}
}

// loadManifest returns the manifest named by --manifest, or the embedded one.
func loadManifest(cmd *cobra.Command) (*manifest.Manifest, error) {
	path, _ := cmd.Flags().GetString("manifest")
	if path == "" {
		return manifest.Reference(), nil
	}
	return manifest.Load(path)
}

func newManifestCmd(e *env) *cobra.Command {
	return group("manifest", "Show, check and apply the data manifest", "",
		newManifestShowCmd(e), newManifestCheckCmd(e), newManifestValidateEventCmd(e))
}

func newManifestShowCmd(e *env) *cobra.Command {
	var format, region string
	cmd := &cobra.Command{
		Use:   "show [--region eu|uk|br|us-ca] [--format md|text|json|html]",
		Short: "Print the notice: who is responsible, what is collected, why, for whom, where, for how long, and the person's rights",
		Args:  cobra.NoArgs,
		RunE: withManifest(func(_ *cobra.Command, m *manifest.Manifest, _ []string) error {
			return m.WriteDisclosure(e.stdout, format, region)
		}),
	}
	cmd.Flags().StringVar(&format, "format", manifest.FormatMarkdown, "output format: md, text, json or html")
	cmd.Flags().StringVar(&region, "region", "", "the region whose notice to print (eu, uk, br, us-ca); empty prints every region's notice")
	return cmd
}

func newManifestCheckCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a manifest file and report every problem with its line and key",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := manifest.Load(args[0])
			if err != nil {
				fmt.Fprintln(e.stderr, err)
				return &findingError{msg: args[0] + ": manifest is not valid"}
			}
			fmt.Fprintf(e.stdout, "%s: manifest %s is valid: %d items, %d event types\n",
				args[0], m.Version, len(m.Items), len(m.EventTypes))
			return nil
		},
	}
}

func newManifestValidateEventCmd(e *env) *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "validate-event FILE|-",
		Short: "Validate an event or a batch document against the manifest",
		Long: "Validate an event ({\"id\",\"type\",\"time\",\"fields\"}) or a whole batch\n" +
			"({\"batch_id\",\"installation_id\",\"region\",\"sent_at\",\"events\"}) and print\n" +
			"each violation. Exit status 1 means the document has violations.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(manifest.Regions, region) {
				return fmt.Errorf("--region: %q is not a region: want one of %s", region, strings.Join(manifest.Regions, ", "))
			}
			m, err := loadManifest(cmd)
			if err != nil {
				return err
			}
			data, err := readInput(e, args[0])
			if err != nil {
				return err
			}
			violations, n, err := validateDocument(m, data, region)
			if err != nil {
				return err
			}
			for _, v := range violations {
				if v.Index >= 0 && n > 1 {
					fmt.Fprintf(e.stdout, "event %d: %s\n", v.Index, v)
				} else {
					fmt.Fprintln(e.stdout, v)
				}
			}
			if len(violations) > 0 {
				return &findingError{msg: fmt.Sprintf("%d violation(s)", len(violations))}
			}
			fmt.Fprintf(e.stdout, "valid: %d event(s)\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "eu", "region profile of an event document: eu, uk, br or us-ca")
	return cmd
}

func readInput(e *env, name string) ([]byte, error) {
	if name == "-" {
		return limitread.All(e.stdin, name, maxEventDocument)
	}
	return limitread.File(name, maxEventDocument)
}

// validateDocument checks an event or a batch and returns the violations and
// the number of events examined.
func validateDocument(m *manifest.Manifest, data []byte, region string) ([]manifest.Violation, int, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, 0, fmt.Errorf("not a JSON object: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if _, isBatch := probe["events"]; isBatch {
		var b provision.Batch
		if err := dec.Decode(&b); err != nil {
			return nil, 0, fmt.Errorf("not a batch: %w", err)
		}
		return m.CheckBatch(&b), len(b.Events), nil
	}
	var ev provision.Event
	if err := dec.Decode(&ev); err != nil {
		return nil, 0, fmt.Errorf("not an event: %w", err)
	}
	return m.CheckEvent(nil, 0, &ev, region), 1, nil
}
