package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/backend"
)

// A command shown in README.md or docs/*.md.
type docCommand struct {
	where string   // file:line
	words []string // as shown, comments and continuations removed
	// parseOnly says why the command is only parsed, not run; empty runs it.
	parseOnly string
	// mention is a command named in the text, perhaps without the
	// arguments and required flags it takes: its words must be a command
	// and the flags shown its flags.
	mention bool
}

func (c docCommand) String() string { return c.where + ": " + strings.Join(c.words, " ") }

// docsMarker, on the line before a fence, says why the block's commands are
// only parsed: <!-- docs-test: parse-only REASON -->.
var docsMarker = regexp.MustCompile(`^<!-- docs-test: parse-only (.+) -->$`)

// inlineCommand is a provision or go command in a code span of the text.
var inlineCommand = regexp.MustCompile("`((?:provision|go run|go test|go build) [^`]*)`")

// shellLangs are the fences whose every line is a command; in a fence
// without a language only lines that start with a command are.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// docCommands extracts the commands of the fenced code blocks of the
// README and of docs/*.md.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	var out []docCommand
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		lines := strings.Split(string(b), "\n")
		in, lang, marker, prefix := false, "", "", ""
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			if !in && !strings.HasPrefix(strings.TrimSpace(line), "```") {
				// Commands in the text are shown with their
				// placeholders: they are parsed.
				for _, m := range inlineCommand.FindAllStringSubmatch(line, -1) {
					words := shellWords(strings.ReplaceAll(m[1], `\|`, "|"))
					out = append(out, docCommand{where: name + ":" + strconv.Itoa(i+1), words: words, parseOnly: "shown in the text", mention: true})
				}
				continue
			}
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "```") {
				if !in {
					in, lang, marker, prefix = true, strings.TrimPrefix(trimmed, "```"), "", ""
					for j := i - 1; j >= 0 && strings.TrimSpace(lines[j]) != ""; j-- {
						if m := docsMarker.FindStringSubmatch(strings.TrimSpace(lines[j])); m != nil {
							marker = m[1]
						}
					}
				} else {
					in = false
				}
				continue
			}
			if !in || (lang != "" && !shellLangs[lang]) {
				continue
			}
			start := i + 1
			for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
			}
			// A synopsis: "provision agent [flags] ..." and its
			// subcommands indented below it.
			if prefix != "" && strings.HasPrefix(line, "  ") {
				line = prefix + " " + strings.TrimSpace(line)
			}
			words := shellWords(stripComment(line))
			if len(words) == 0 {
				continue
			}
			if !shellLangs[lang] && words[0] != "provision" && words[0] != "go" {
				continue // a diagram or an HTTP exchange
			}
			if n := len(words); words[0] == "provision" && (words[n-1] == "..." || words[n-1] == "…") {
				prefix = strings.Join(words[:n-1], " ")
				continue // the synopsis's head: its lines are the commands
			}
			out = append(out, docCommand{where: name + ":" + strconv.Itoa(start), words: words, parseOnly: marker})
		}
	}
	return out
}

// stripComment removes a shell comment: # at the start or after a space,
// outside quotes.
func stripComment(s string) string {
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// shellWords splits a command line on blanks, honouring simple quotes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quote, inWord := byte(0), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

var (
	// placeholder is a word the reader replaces: DIR, FILE, HOST:PORT,
	// REQUEST_ID, nats://…
	placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_:.]*$|…`)
	// serviceURL is an address of a server or a service the command
	// would need running.
	serviceURL = regexp.MustCompile(`^(https?|nats|postgres)://`)
)

// provisionArgs returns the arguments of a provision command, and whether
// it is one: "provision ARGS" or "go run ./cmd/provision ARGS".
func provisionArgs(words []string) ([]string, bool) {
	switch {
	case len(words) >= 1 && words[0] == "provision":
		return words[1:], true
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" && strings.TrimSuffix(words[2], "/") == "./cmd/provision":
		return words[3:], true
	}
	return nil, false
}

// whyNotRun says why a provision command is parsed and not run: it needs
// a server or a service, runs in the background, runs for long, or is a
// synopsis with placeholders. Empty: it runs in a temporary directory,
// with DIR a fresh store.
func whyNotRun(c docCommand, args []string) string {
	if c.parseOnly != "" {
		return c.parseOnly
	}
	for _, a := range args {
		_, v, _ := strings.Cut(a, "=")
		switch {
		case serviceURL.MatchString(a) || serviceURL.MatchString(v):
			return "needs a running server or service (" + a + ")"
		case a == "&":
			return "starts a server in the background"
		case a != "DIR" && (placeholder.MatchString(a) || strings.ContainsAny(a, "[]|")):
			return "a synopsis with placeholders"
		}
	}
	return ""
}

// synopsisArgs turns a synopsis into arguments that parse: optional parts
// kept, the first of alternatives, "..." dropped.
func synopsisArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.NewReplacer("[", "", "]", "").Replace(args[i])
		if j := strings.IndexByte(a, '|'); j >= 0 {
			// "--data DIR|--store URL": the other alternative's value
			// goes with it.
			if alt := a[j+1:]; strings.HasPrefix(alt, "-") && !strings.Contains(alt, "=") && i+1 < len(args) {
				i++
			}
			a = a[:j]
		}
		a = strings.TrimSuffix(strings.TrimSuffix(a, "..."), "…")
		if a != "" && a != "&" {
			out = append(out, a)
		}
	}
	return out
}

// parseCommand parses args as `provision` would, without running the
// command: the subcommand must exist, its flags too, with values of their
// type, its arguments must fit, and its required flags be there.
// Placeholder values of typed flags are replaced by a value of the type.
func parseCommand(args []string) error {
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := newRootCmd(e)
	var stub func(c *cobra.Command)
	stub = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			stub(sub)
		}
		if c.Runnable() && !c.HasSubCommands() {
			c.Run, c.RunE = nil, func(*cobra.Command, []string) error { return nil }
		}
	}
	stub(root)
	if cmd, _, err := root.Find(args); err == nil {
		args = typedPlaceholders(cmd, args)
	}
	root.SetArgs(args)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	return root.ExecuteContext(context.Background())
}

// parseMention checks a command named in the text: its words name a
// command, and each flag shown is one of its own (for a group such as
// "provision agent … --json", one of its subcommands').
func parseMention(args []string) error {
	e := &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd, rest, err := newRootCmd(e).Find(args)
	if err != nil {
		return err
	}
	if !cmd.HasSubCommands() {
		return cmd.ParseFlags(typedPlaceholders(cmd, rest))
	}
	for _, a := range rest {
		name, isFlag := strings.CutPrefix(a, "--")
		if !isFlag {
			return fmt.Errorf("%s: unknown command %q", cmd.CommandPath(), a)
		}
		name, _, _ = strings.Cut(name, "=")
		if !anyHasFlag(cmd, name) {
			return fmt.Errorf("no command under %s has --%s", cmd.CommandPath(), name)
		}
	}
	return nil
}

func anyHasFlag(c *cobra.Command, name string) bool {
	if c.Flags().Lookup(name) != nil {
		return true
	}
	for _, sub := range c.Commands() {
		if anyHasFlag(sub, name) {
			return true
		}
	}
	return false
}

// typedPlaceholders gives a flag whose value is a placeholder ("--timeout
// D") a value of its type.
func typedPlaceholders(cmd *cobra.Command, args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		name, ok := strings.CutPrefix(out[i], "--")
		if !ok || strings.Contains(name, "=") || !placeholder.MatchString(out[i+1]) {
			continue
		}
		f := cmd.Flags().Lookup(name)
		if f == nil {
			continue
		}
		switch f.Value.Type() {
		case "duration":
			out[i+1] = "1s"
		case "int", "int64", "uint", "uint64", "float64", "count":
			out[i+1] = "1"
		}
	}
	return out
}

// buildProvision builds the binary the runnable commands run.
func buildProvision(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "provision")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Every provision command the README and docs show exists, with the flags
// it is shown with, and those that need no server, service or long run
// succeed when run in a temporary directory.
func TestDocsCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmds := docCommands(t)
	if len(cmds) < 20 {
		t.Fatalf("only %d commands found in the docs: the extraction is broken", len(cmds))
	}
	bin := buildProvision(t)
	ran, parsed, other := 0, 0, 0
	for _, c := range cmds {
		args, ok := provisionArgs(c.words)
		if !ok {
			if err := checkOtherCommand(c.words); err != nil {
				t.Errorf("%s: %v", c, err)
			}
			other++
			continue
		}
		parse := parseCommand
		if c.mention {
			parse = parseMention
		}
		if err := parse(synopsisArgs(args)); err != nil {
			t.Errorf("%s: does not parse: %v", c, err)
			continue
		}
		if why := whyNotRun(c, args); why != "" {
			t.Logf("%s: parsed only: %s", c, why)
			parsed++
			continue
		}
		if err := runDocCommand(t, bin, args); err != nil {
			t.Errorf("%s: %v", c, err)
		}
		t.Logf("%s: ran", c)
		ran++
	}
	t.Logf("%d provision commands run, %d parsed only, %d other commands checked", ran, parsed, other)
	if ran == 0 {
		t.Error("no command was run")
	}
}

// runDocCommand runs a provision command in a temporary directory where DIR
// is a fresh embedded store.
func runDocCommand(t *testing.T, bin string, args []string) error {
	t.Helper()
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	b, err := backend.Open(context.Background(), backend.Options{Store: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == "DIR" {
			args[i] = dir
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + work}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &runError{err: err, out: out}
	}
	return nil
}

type runError struct {
	err error
	out []byte
}

func (e *runError) Error() string { return e.err.Error() + ":\n" + string(e.out) }

// goTestFlags are go test's own flags that take a value; other flags
// before the packages' -args go to the test binary, which must define them.
var goTestFlags = map[string]bool{"run": true, "bench": true, "fuzz": true, "fuzztime": true, "fuzzminimizetime": true,
	"benchtime": true, "count": true, "timeout": true, "cpu": true, "p": true, "skip": true, "tags": true, "o": true, "ldflags": true, "buildmode": true}

// goTestBools are go test's own flags without a value.
var goTestBools = map[string]bool{"v": true, "race": true, "short": true, "trimpath": true, "json": true, "cover": true, "failfast": true, "benchmem": true}

// testFunc is a test, benchmark or fuzz target's declaration.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)

// checkOtherCommand checks what can be checked of a command other than
// provision's without running it: go test/run/build name packages that
// exist, the -run/-bench/-fuzz patterns match a test, benchmark or fuzz
// target there, and the flags given to the program or the test binary are
// defined there. Other programs (nats-server, a C compiler) are not
// Provision's.
func checkOtherCommand(words []string) error {
	for len(words) > 0 && strings.Contains(words[0], "=") {
		words = words[1:] // VAR=value before the command
	}
	if len(words) < 2 || words[0] != "go" {
		return nil
	}
	var pkgs, flags []string
	patterns := map[string]string{} // -run/-bench/-fuzz → pattern
	for i := 2; i < len(words); i++ {
		w := words[i]
		name, isFlag := strings.CutPrefix(w, "-")
		name = strings.TrimPrefix(name, "-")
		name, value, hasValue := strings.Cut(name, "=")
		switch {
		case strings.HasPrefix(w, "./"):
			pkgs = append(pkgs, w)
			if words[1] == "run" {
				flags = append(flags, programFlags(words[i+1:])...)
				i = len(words)
			}
		case words[1] == "test" && w == "-args":
			flags = append(flags, programFlags(words[i+1:])...)
			i = len(words)
		case !isFlag:
		case goTestFlags[name]:
			if !hasValue && i+1 < len(words) {
				i++
				value = words[i]
			}
			if name == "run" || name == "bench" || name == "fuzz" {
				patterns[name] = value
			}
		case goTestBools[name]:
		case words[1] == "test":
			flags = append(flags, name)
		}
	}
	var errs []string
	var sources bytes.Buffer
	for _, p := range pkgs {
		root := filepath.Join("../..", strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/"))
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			errs = append(errs, "no package "+p)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, "*.go"))
		if strings.HasSuffix(p, "...") {
			files = nil // only flags and names are looked up: not for trees
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			sources.Write(b)
		}
	}
	if sources.Len() > 0 {
		var names []string
		for _, m := range testFunc.FindAllSubmatch(sources.Bytes(), -1) {
			names = append(names, string(m[1]))
		}
		for kind, pat := range patterns {
			if pat == "^$" || pat == "XXX" {
				continue // run nothing of that kind
			}
			// As go test reads it: the part before the first slash
			// names top-level functions, the rest their subtests.
			top, _, _ := strings.Cut(pat, "/")
			re, err := regexp.Compile(top)
			if err != nil {
				errs = append(errs, fmt.Sprintf("-%s %q: %v", kind, pat, err))
				continue
			}
			prefix := map[string]string{"run": "Test", "bench": "Benchmark", "fuzz": "Fuzz"}[kind]
			found := false
			for _, n := range names {
				found = found || (strings.HasPrefix(n, prefix) && re.MatchString(n))
			}
			if !found {
				errs = append(errs, fmt.Sprintf("-%s %s matches nothing in %s", kind, pat, strings.Join(pkgs, " ")))
			}
		}
		for _, f := range flags {
			if !bytes.Contains(sources.Bytes(), []byte(`"`+f+`"`)) {
				errs = append(errs, "no flag -"+f+" in "+strings.Join(pkgs, " "))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// programFlags are the names of the flags in a program's arguments, up to
// a "--", after which the arguments are the program's to pass on.
func programFlags(args []string) []string {
	var out []string
	for _, a := range args {
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "-"); ok && name != "" {
			name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
			out = append(out, name)
		}
	}
	return out
}
