package qmpbitmap

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/vmi/qemu"
)

// fakeQEMU keeps the block state QEMU would for the commands this package
// sends: one drive "data" (node #block100), its dirty bitmaps, exports and
// the NBD server, which it really starts (diskmon/nbd's server, serving a
// file of the drive's size, any export name, no meta contexts) so that the
// data export can be read.
type fakeQEMU struct {
	t    *testing.T
	img  string
	size int64

	mu       sync.Mutex
	bitmaps  map[string]*fakeBitmap
	exports  map[string]string // id -> bitmap ("" for none)
	server   *nbd.Server
	listener net.Listener
	cancel   context.CancelFunc
	foreign  bool // a server runs that nobody here started
	// loseReply: the next transaction is done but its reply is an error
	// (as when the client timed out waiting).
	loseReply bool
	flushes   uint64
	log       []string
	// linger: block-export-del leaves the export listed (and its bitmap
	// busy) for this many more query-block-exports, as QEMU does while the
	// deletion completes in its main loop.
	linger   int
	shutting map[string]int // export id -> queries left
}

type fakeBitmap struct {
	recording   bool
	count       uint64
	granularity float64
}

func newFakeQEMU(t *testing.T) *fakeQEMU {
	img := filepath.Join(t.TempDir(), "disk.img")
	const size = 4 << 20
	if err := os.WriteFile(img, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeQEMU{t: t, img: img, size: size, bitmaps: map[string]*fakeBitmap{}, exports: map[string]string{}}
	t.Cleanup(f.stopServer)
	return f
}

// Execute is the QMP interface: the arguments go through JSON as on the
// wire, and errors come back as vmi/qemu's client returns them.
func (f *fakeQEMU) Execute(cmd string, args any) (json.RawMessage, error) {
	var m map[string]any
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
	}
	ret, desc := f.handle(cmd, m)
	if desc != "" {
		return nil, &qemu.Error{Command: cmd, Class: "GenericError", Desc: desc}
	}
	return json.RawMessage(ret), nil
}

func (f *fakeQEMU) stopServer() {
	if f.server != nil {
		f.cancel()
		f.server.Close()
		f.listener.Close()
		f.server = nil
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// handle answers one command: its return value, or an error's desc.
func (f *fakeQEMU) handle(cmd string, args map[string]any) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, cmd)
	errReply := func(desc string) (string, string) { return "", desc }
	str := func(k string) string { s, _ := args[k].(string); return s }
	switch cmd {
	case "query-block":
		return jsonOf([]any{map[string]any{"device": "data", "qdev": "/machine/peripheral/vd0/virtio-backend",
			"inserted": f.node()}}), ""
	case "query-named-block-nodes":
		return jsonOf([]any{f.node()}), ""
	case "query-blockstats":
		return jsonOf([]any{map[string]any{"device": "data", "node-name": "#block100",
			"stats": map[string]any{"flush_operations": f.flushes}}}), ""
	case "query-block-exports":
		for id, n := range f.shutting {
			if n <= 0 {
				delete(f.exports, id)
				delete(f.shutting, id)
			} else {
				f.shutting[id] = n - 1
			}
		}
		var out []any
		for id := range f.exports {
			out = append(out, map[string]any{"id": id, "type": "nbd", "node-name": "#block100", "shutting-down": false})
		}
		return jsonOf(out), ""
	case "block-dirty-bitmap-add":
		if str("node") != "#block100" || f.bitmaps[str("name")] != nil {
			return errReply("bad add")
		}
		g, _ := args["granularity"].(float64)
		f.bitmaps[str("name")] = &fakeBitmap{recording: true, granularity: g}
		return "{}", ""
	case "block-dirty-bitmap-remove":
		if f.bitmaps[str("name")] == nil {
			return errReply("bad remove")
		}
		if f.busy(str("name")) {
			return errReply("Bitmap '" + str("name") + "' is currently in use by another operation and cannot be used")
		}
		delete(f.bitmaps, str("name"))
		return "{}", ""
	case "transaction":
		acts, _ := args["actions"].([]any)
		for _, a := range acts {
			m := a.(map[string]any)
			d := m["data"].(map[string]any)
			switch m["type"] {
			case "block-dirty-bitmap-add":
				g, _ := d["granularity"].(float64)
				f.bitmaps[d["name"].(string)] = &fakeBitmap{recording: true, granularity: g}
			case "block-dirty-bitmap-disable":
				f.bitmaps[d["name"].(string)].recording = false
			}
		}
		if f.loseReply {
			f.loseReply = false
			return errReply("no reply within 10s")
		}
		return "{}", ""
	case "nbd-server-start":
		if f.server != nil || f.foreign {
			return errReply("NBD server already running")
		}
		addr := args["addr"].(map[string]any)["data"].(map[string]any)["path"].(string)
		b, err := nbd.OpenFile(f.img, true)
		if err != nil {
			f.t.Error(err)
			return errReply(err.Error())
		}
		l, err := nbd.ListenUnix(addr)
		if err != nil {
			f.t.Error(err)
			return errReply(err.Error())
		}
		ctx, cancel := context.WithCancel(context.Background())
		f.server, f.listener, f.cancel = nbd.NewServer(b, nbd.Options{}), l, cancel
		go f.server.Serve(ctx, l)
		return "{}", ""
	case "nbd-server-stop":
		if f.server == nil && !f.foreign {
			return errReply("NBD server not running")
		}
		f.stopServer()
		f.foreign = false
		return "{}", ""
	case "block-export-add":
		id := str("id")
		if _, dup := f.exports[id]; dup {
			return errReply("Block export id '" + id + "' is already in use")
		}
		if (f.server == nil && !f.foreign) || args["writable"] != false {
			return errReply("bad export")
		}
		bm := ""
		if l, ok := args["bitmaps"].([]any); ok && len(l) == 1 {
			bm = l[0].(string)
			if b := f.bitmaps[bm]; b == nil || b.recording {
				return errReply("enabled bitmap incompatible with readonly export")
			}
		}
		f.exports[id] = bm
		return "{}", ""
	case "block-export-del":
		id := str("id")
		if _, ok := f.exports[id]; !ok {
			return errReply("Export 'x' is not found")
		}
		if _, ok := f.shutting[id]; ok {
			return errReply("Export '" + id + "' is already shutting down")
		}
		if f.linger > 0 {
			if f.shutting == nil {
				f.shutting = map[string]int{}
			}
			f.shutting[id] = f.linger
			return "{}", ""
		}
		delete(f.exports, id)
		return "{}", ""
	}
	return "", "The command " + cmd + " has not been found"
}

// busy: the bitmap is exported; f.mu is held.
func (f *fakeQEMU) busy(name string) bool {
	for _, b := range f.exports {
		if b == name {
			return true
		}
	}
	return false
}

// node is the drive's BlockDeviceInfo; f.mu is held.
func (f *fakeQEMU) node() map[string]any {
	var bms []any
	for name, b := range f.bitmaps {
		bms = append(bms, map[string]any{"name": name, "recording": b.recording, "count": b.count})
	}
	return map[string]any{"node-name": "#block100", "drv": "raw", "image": map[string]any{"virtual-size": f.size},
		"dirty-bitmaps": bms}
}

// write is a guest write: every recording bitmap counts it.
func (f *fakeQEMU) write(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bitmaps {
		if b.recording {
			b.count += n
		}
	}
}

// state lists the bitmaps, exports and server, for comparisons.
func (f *fakeQEMU) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for name := range f.bitmaps {
		s = append(s, "bitmap "+name)
	}
	for id := range f.exports {
		s = append(s, "export "+id)
	}
	sort.Strings(s)
	return fmt.Sprintf("%s server=%v", strings.Join(s, ","), f.server != nil || f.foreign)
}
