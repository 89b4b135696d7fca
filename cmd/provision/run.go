package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of every command.
const (
	exitOK      = 0 // the job succeeded and found nothing wrong
	exitFinding = 1 // the job ran and found something, such as an invalid event
	exitError   = 2 // bad usage or an error that stopped the job
)

// env is what a command may read from outside its flags. Tests build their
// own so that nothing depends on the real process environment.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// findingError reports a finding (exit 1) rather than a failure (exit 2).
// The command has already printed the details.
type findingError struct{ msg string }

func (e *findingError) Error() string { return e.msg }

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var finding *findingError
	if errors.As(err, &finding) {
		if finding.msg != "" {
			fmt.Fprintln(stderr, "provision:", finding.msg)
		}
		return exitFinding
	}
	fmt.Fprintln(stderr, "provision:", err)
	return exitError
}

// newRootCmd builds the command tree. Each job adds its command here.
func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "provision",
		Short:         "Telemetry that keeps the promises of a licence's data-provision terms",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("provision {{.Version}}\n")
	root.PersistentFlags().String("manifest", "", "data manifest `FILE` to use instead of the embedded reference manifest")
	root.AddCommand(
		newAgentCmd(e),
		newManifestCmd(e),
		newServeCmd(e),
		newForwardCmd(e),
		newWorkerCmd(e),
		newScanCmd(e),
		newSimulateCmd(e),
		newDemoCmd(e),
		newRollupCmd(e),
		newReportCmd(e),
		newPrivacyCmd(e),
	)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// fail with exit 2 on a word that is none of them, or on none at all,
// where cobra would print the help and succeed.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		where := ""
		if cmd.HasParent() {
			where = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": "
		}
		if len(args) == 0 {
			return fmt.Errorf("%smissing command: want one of %s (see --help)", where, strings.Join(names, ", "))
		}
		return fmt.Errorf("%sunknown command %q: want one of %s", where, args[0], strings.Join(names, ", "))
	}
}
