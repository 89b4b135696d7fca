package server

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// group is the one run group of the server: the HTTP listener, its
// shutdown and every background job. The first error ends the others; each
// error is logged with the job's name and returned by Wait.
type group struct {
	eg     *errgroup.Group
	logger *slog.Logger
}

func newGroup(ctx context.Context, logger *slog.Logger) (*group, context.Context) {
	eg, gctx := errgroup.WithContext(ctx)
	return &group{eg: eg, logger: logger}, gctx
}

// Go runs fn under name.
func (g *group) Go(name string, fn func() error) {
	g.eg.Go(func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%s: panic: %v", name, r)
			}
			if err != nil {
				g.logger.Error("server job failed", "job", name, "err", err)
			}
		}()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Wait waits for every job and returns the first error.
func (g *group) Wait() error { return g.eg.Wait() }
