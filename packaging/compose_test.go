package packaging_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of the compose specification the file uses;
// decoding is strict, so a misspelt key fails the test.
type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Restart     string            `yaml:"restart"`
		Ports       []string          `yaml:"ports"`
		Build       string            `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test     []string `yaml:"test"`
			Interval string   `yaml:"interval"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeScaleOut: the compose file runs NATS with JetStream,
// PostgreSQL, ingest nodes and workers pointed at both, with flags the
// binary has and a NATS configuration nats-server accepts.
func TestComposeScaleOut(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nats", "postgres", "serve", "worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("compose.yaml has no %q service", name)
		}
	}
	for _, name := range []string{"nats", "postgres"} {
		if hc := c.Services[name].Healthcheck; hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s has no healthcheck, yet serve and worker wait for it to be healthy", name)
		}
	}
	if !strings.HasPrefix(c.Services["nats"].Image, "nats:") || !strings.HasPrefix(c.Services["postgres"].Image, "postgres:") {
		t.Errorf("images: nats %q, postgres %q", c.Services["nats"].Image, c.Services["postgres"].Image)
	}

	// The NATS configuration the service mounts: JetStream on, and a
	// payload limit large enough for the biggest submission.
	nats := c.Services["nats"]
	if !slices.Equal(nats.Command, []string{"-c", "/etc/nats/nats.conf"}) || !slices.Contains(nats.Volumes, "./nats.conf:/etc/nats/nats.conf:ro") {
		t.Errorf("the nats service does not run with ./nats.conf: command %q, volumes %q", nats.Command, nats.Volumes)
	}
	conf, err := os.ReadFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"jetstream {", "max_payload: 8MB", "listen: 0.0.0.0:4222"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	if ns, err := exec.LookPath("nats-server"); err == nil {
		if out, err := exec.Command(ns, "-c", "nats.conf", "-t").CombinedOutput(); err != nil {
			t.Errorf("nats-server -t: %v\n%s", err, out)
		}
	} else if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		if out, err := exec.Command("/usr/sbin/nats-server", "-c", "nats.conf", "-t").CombinedOutput(); err != nil {
			t.Errorf("nats-server -t: %v\n%s", err, out)
		}
	}

	for _, role := range []string{"serve", "worker"} {
		s := c.Services[role]
		if s.Build != ".." || s.Image != "provision:latest" {
			t.Errorf("%s: build %q image %q, want the repository's Dockerfile as provision:latest", role, s.Build, s.Image)
		}
		if len(s.Command) == 0 || s.Command[0] != role {
			t.Fatalf("%s: command %q does not run provision %s", role, s.Command, role)
		}
		arg := func(flag string) string {
			if i := slices.Index(s.Command, flag); i >= 0 && i+1 < len(s.Command) {
				return s.Command[i+1]
			}
			return ""
		}
		if arg("--log") != "nats://nats:4222" {
			t.Errorf("%s: --log %q, want the nats service", role, arg("--log"))
		}
		if !strings.HasPrefix(arg("--store"), "postgres://provision@postgres:5432/provision") {
			t.Errorf("%s: --store %q, want the postgres service", role, arg("--store"))
		}
		// The password reaches pgx through PGPASSWORD, never the command line.
		if strings.Contains(arg("--store"), ":"+"${") || s.Environment["PGPASSWORD"] == "" {
			t.Errorf("%s: the PostgreSQL password must come from PGPASSWORD", role)
		}
		for _, dep := range []string{"nats", "postgres"} {
			if s.DependsOn[dep].Condition != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy", role, dep)
			}
		}
		if role == "serve" && serveLacksScaleOut(t) {
			t.Log("provision serve has no --log/--store yet: serve's flags are checked once it has")
			continue
		}
		checkFlags(t, "compose.yaml "+role, s.Command)
	}
}

// serveLacksScaleOut reports whether serve still lacks the scale-out flags
// (docs/scale-out.md: wiring them into serve is pending on the server
// branch). Only then is the serve command's flag check put off.
func serveLacksScaleOut(t *testing.T) bool {
	f := helpFlags(t, "serve")
	return !f["--log"] && !f["--store"]
}
