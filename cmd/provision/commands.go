package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/backend"
)

// group returns a command that only holds its subcommands.
func group(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	cmd.AddCommand(subs...)
	return cmd
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// checkFormat refuses a --format value that is not one of formats.
func checkFormat(format string, formats []string) error {
	if !slices.Contains(formats, format) {
		return fmt.Errorf("--format: %q is not one of %s", format, strings.Join(formats, ", "))
	}
	return nil
}

// register adds --data and --store (with its tuning flags) to an operator
// command that works on an existing store.
func (f *storeFlags) register(cmd *cobra.Command, role string) {
	f.registerData(cmd)
	f.registerStore(cmd, role)
}

// withBackend wraps a command body that needs the store open.
func withBackend(so *storeFlags, e *env, body func(cmd *cobra.Command, b *backend.Backend, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		b, err := so.open(cmd.Context(), e)
		if err != nil {
			return err
		}
		defer b.Close()
		return body(cmd, b, args)
	}
}
