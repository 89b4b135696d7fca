package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/provisionhq/provision"
)

// classify marks errors that a caller may retry with provision.ErrUnavailable:
// a lost or refused connection, an administrator's shutdown or termination,
// too many connections, a serialization failure or a deadlock. Anything else
// (a constraint the data breaks, bad SQL) is returned as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, provision.ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", provision.ErrUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exception
			return true
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "53": // insufficient resources
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, starting
			return true
		case pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		case pgErr.Code == "55P03": // lock not available
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	return errors.Is(err, net.ErrClosed) || isConnBroken(err)
}

// isConnBroken recognises the errors pgx returns after the server closed the
// connection underneath a query; pgx does not export a sentinel for them.
func isConnBroken(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"conn closed", "unexpected eof", "broken pipe", "connection reset", "terminating connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
