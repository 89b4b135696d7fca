// Command soak is the long version of the chaos test, for manual runs: a
// simulated fleet uploads through the real agent library (or the wire
// protocol) to a server child process that is killed with SIGKILL and
// restarted, and whose network refuses connections, at intervals; the
// server's RSS and open files are printed over time and must stay flat.
// At the end every confirmed event must be stored exactly once.
//
//	go run ./bench/soak -installs 3000 -days 60 -kills 10 -refusals 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/bench/internal/driver"
	"github.com/provisionhq/provision/internal/serverproc"
	"github.com/provisionhq/provision/internal/sim"
	"github.com/provisionhq/provision/internal/sim/chaos"
	"github.com/provisionhq/provision/internal/sqlite"
)

func main() {
	installs := flag.Int("installs", 3000, "installations")
	days := flag.Int("days", 60, "simulated days")
	seed := flag.Uint64("seed", 1, "seed of the fleet")
	kills := flag.Int("kills", 10, "SIGKILL-and-restart events spread over the run")
	refusals := flag.Int("refusals", 5, "periods of refused connections")
	refuseFor := flag.Duration("refuse-for", 3*time.Second, "length of each refusal")
	every := flag.Duration("every", 5*time.Second, "sampling interval of RSS and open files")
	via := flag.String("via", "agent", "agent or wire")
	workers := flag.Int("workers", 32, "concurrent uploads")
	keep := flag.Bool("keep", false, "keep the data directory")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := soak(ctx, *installs, *days, *seed, *kills, *refusals, *refuseFor, *every, *via, *workers, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func soak(ctx context.Context, installs, days int, seed uint64, kills, refusals int, refuseFor, every time.Duration, via string, workers int, keep bool) error {
	dir, err := os.MkdirTemp("", "provision-soak-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	bin, err := driver.Build(dir)
	if err != nil {
		return err
	}
	fmt.Printf("%-8s %-10s %-10s %-10s\n", "elapsed", "rss_mib", "open_fds", "batches")
	rep, err := chaos.Run(ctx, chaos.Options{
		Binary:  bin,
		DataDir: filepath.Join(dir, "server"),
		Fleet:   sim.Config{Installs: installs, Days: days, Seed: seed, Start: sim.DefaultStart(time.Now(), days)},
		Workers: workers, Kills: kills, Refusals: refusals, RefuseFor: refuseFor, Via: via,
		ServerCommand: func(dataDir, addr string) []string {
			return []string{"demo", "--server-only", "--data", dataDir, "--listen", addr}
		},
		Countries: true,
		OpenLog: func(ctx context.Context, dataDir string) (provision.Log, io.Closer, error) {
			s, err := sqlite.Open(ctx, filepath.Join(dataDir, "provision.db"))
			return s, s, err
		},
		Every: every,
		Sampled: func(elapsed time.Duration, u serverproc.Usage, confirmed int64) {
			fmt.Printf("%-8s %-10.1f %-10d %-10d\n", elapsed.Round(time.Second), float64(u.RSSKiB)/1024, u.OpenFiles, confirmed)
		},
		Logf: func(format string, args ...any) { fmt.Printf("# "+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Printf("# %d kills, %d refusals in %s\n# %s\n", rep.Kills, rep.Refusals, rep.Elapsed.Round(time.Second), rep.Check)
	if keep {
		fmt.Printf("# data kept in %s\n", dir)
	}
	if !rep.Check.OK() {
		return fmt.Errorf("loss, duplication or wrong counts after the soak")
	}
	return nil
}
