package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// The one log format of serve and worker: slog, with the level and the
// format (text for a terminal, json for a collector) chosen by flags.

func parseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

func validLogFormat(s string) bool { return s == "text" || s == "json" }

// newLogger writes to w at level in format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := parseLogLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// logFlags are --log-level and --log-format for commands without a
// configuration file.
type logFlags struct{ level, format string }

func (f *logFlags) register(cmd *cobra.Command, format string) {
	cmd.Flags().StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.format, "log-format", format, "text or json")
}

func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) { return newLogger(w, f.level, f.format) }
