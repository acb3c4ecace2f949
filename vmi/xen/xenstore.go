package xen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xascript/xascript/vmi"
)

// Xenstore wire protocol (xen/include/public/io/xs_wire.h): a 16-byte
// header (type, req_id, tx_id, len, little-endian u32s) and len bytes of
// payload. Requests name a path as a NUL-terminated string.
const (
	xsDirectory = 1
	xsRead      = 2
	xsError     = 16
	xsHeaderLen = 16
	xsMaxLen    = 4096 // XENSTORE_PAYLOAD_MAX
)

// XenstorePaths are where dom0 offers xenstore, tried in order: xenstored's
// own socket (C and OCaml xenstored), then the kernel's xenbus device.
var XenstorePaths = []string{"/run/xenstored/socket", "/var/run/xenstored/socket", "/dev/xen/xenbus"}

// xenstore is one connection to xenstored.
type xenstore struct {
	rw    io.ReadWriter
	close func() error
	reqID uint32
}

func dialXenstore(paths []string, timeout time.Duration) (*xenstore, error) {
	var errs []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if strings.HasPrefix(p, "/dev/") {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", p, err))
				continue
			}
			return &xenstore{rw: f, close: f.Close}, nil
		}
		c, err := net.DialTimeout("unix", p, timeout)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		c.SetDeadline(time.Now().Add(timeout))
		return &xenstore{rw: c, close: c.Close}, nil
	}
	return nil, fmt.Errorf("no xenstore to ask for domain names (is xenstored running?): %s", strings.Join(errs, "; "))
}

func (x *xenstore) Close() error { return x.close() }

// request sends one message and returns the reply's payload.
func (x *xenstore) request(typ uint32, path string) ([]byte, error) {
	x.reqID++
	payload := append([]byte(path), 0)
	msg := make([]byte, xsHeaderLen+len(payload))
	le.PutUint32(msg[0:], typ)
	le.PutUint32(msg[4:], x.reqID)
	le.PutUint32(msg[12:], uint32(len(payload)))
	copy(msg[xsHeaderLen:], payload)
	if _, err := x.rw.Write(msg); err != nil {
		return nil, fmt.Errorf("xenstore write: %w", err)
	}
	// Watch events (type XS_WATCH_EVENT) are never asked for, so the next
	// message is the reply.
	var hdr [xsHeaderLen]byte
	if _, err := io.ReadFull(x.rw, hdr[:]); err != nil {
		return nil, fmt.Errorf("xenstore read: %w", err)
	}
	n := le.Uint32(hdr[12:])
	if n > xsMaxLen {
		return nil, fmt.Errorf("xenstore reply of %d bytes: %w", n, vmi.ErrLimit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(x.rw, body); err != nil {
		return nil, fmt.Errorf("xenstore read: %w", err)
	}
	if rt := le.Uint32(hdr[0:]); rt == xsError {
		return nil, fmt.Errorf("xenstore %s: %s", path, strings.TrimRight(string(body), "\x00"))
	} else if rt != typ {
		return nil, fmt.Errorf("xenstore %s: reply of type %d to a request of type %d", path, rt, typ)
	}
	return body, nil
}

func (x *xenstore) read(path string) (string, error) {
	b, err := x.request(xsRead, path)
	return strings.TrimRight(string(b), "\x00"), err
}

func (x *xenstore) directory(path string) ([]string, error) {
	b, err := x.request(xsDirectory, path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range bytes.Split(b, []byte{0}) {
		if len(f) > 0 {
			out = append(out, string(f))
		}
	}
	return out, nil
}

// ErrNoDomain is returned when no domain has the given id or name.
var ErrNoDomain = errors.New("no such domain")

// lookupDomain returns the id of the domain called name, from the names
// the toolstack keeps at /local/domain/<id>/name.
func (x *xenstore) lookupDomain(name string) (uint16, error) {
	ids, err := x.directory("/local/domain")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, s := range ids {
		id, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			continue
		}
		n, err := x.read("/local/domain/" + s + "/name")
		if err != nil {
			continue
		}
		if n == name {
			return uint16(id), nil
		}
		names = append(names, fmt.Sprintf("%s (%d)", n, id))
	}
	return 0, fmt.Errorf("domain %q: %w (domains: %s)", name, ErrNoDomain, strings.Join(names, ", "))
}

// domainName returns the name xenstore holds for id, or "".
func (x *xenstore) domainName(id uint16) string {
	n, err := x.read(fmt.Sprintf("/local/domain/%d/name", id))
	if err != nil {
		return ""
	}
	return n
}
