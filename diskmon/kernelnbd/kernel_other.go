//go:build !linux

package kernelnbd

import (
	"context"
	"errors"

	"github.com/xascript/xascript/diskmon/nbd"
)

// Device is a kernel NBD device; only Linux has them.
type Device struct{}

// Attach fails: kernel NBD devices are Linux's.
func Attach(ctx context.Context, path string, s *nbd.Server, size int64, logf func(string, ...any)) (*Device, error) {
	return nil, errors.New("nbd device " + path + ": kernel NBD devices exist only on Linux")
}

// Path is the device's path.
func (d *Device) Path() string { return "" }

// Close does nothing.
func (d *Device) Close() error { return nil }
