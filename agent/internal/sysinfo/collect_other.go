//go:build !linux && !windows && !darwin

package sysinfo

import (
	"context"
	"errors"
)

func collect(context.Context) (OS, error) {
	return OS{}, errors.New("reading the operating system is not supported on this platform")
}
