package qmpbitmap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xascript/xascript/diskmon/nbd"
)

// Prefix starts the name of every bitmap and export this package adds, so a
// later run can find what a killed one left behind.
const Prefix = "xascript-"

// DefaultInterval is how often the dirty bitmap is swapped and read.
const DefaultInterval = time.Second

// Options configure Open.
type Options struct {
	// Drive names the guest's disk: a drive id, a qdev id or path, or a
	// node name (see findDrive).
	Drive string
	// Interval between two reads of the dirty bitmap (DefaultInterval when
	// zero; at least 50 ms).
	Interval time.Duration
	// TempDir holds the 0700 folder of the NBD server's socket
	// (os.TempDir() when empty). QEMU must be able to reach it: the same
	// host and mount namespace.
	TempDir string
	Logf    func(format string, args ...any)
}

// Change is one range the guest wrote since the last swap, or (Flush) the
// news that it flushed the drive.
type Change struct {
	Off, Len uint64
	Flush    bool
	At       time.Time
}

// Source follows the writes of a running QEMU guest to one drive through
// a dirty bitmap, and reads the drive through a read-only NBD export.
type Source struct {
	q    *countedQMP
	opts Options
	drv  drive
	pid  int

	dir     string // 0700 folder of the socket
	sock    string
	started bool // we started QEMU's NBD server

	data    *nbd.Client // the drive, read-only, for the file-system view
	cache   *blockCache // over data
	dataExp string

	mu       sync.Mutex // one QMP sequence at a time (Poll, Close)
	gen      int        // the recording bitmap is name(gen)
	bitmaps  []string   // bitmaps we added and have not removed
	exports  []string   // exports we added and have not removed
	flushes  uint64
	haveStat bool
	closed   bool
	// for the poll's log line (Logf)
	idleCalls          int // QMP commands of a poll that finds nothing
	logReads, logBytes uint64
}

// Open prepares tracking of the drive: it removes what an earlier xascript
// that died left on it (bitmaps and exports named Prefix+PID of a process
// that no longer runs), starts QEMU's NBD server on a unix socket in a new
// owner-only folder, adds the first dirty bitmap and a read-only export of
// the drive, and connects to it. Close undoes all of it.
func Open(ctx context.Context, q QMP, opts Options) (_ *Source, err error) {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < 50*time.Millisecond {
		return nil, fmt.Errorf("interval %v is below 50ms", opts.Interval)
	}
	d, err := findDrive(q, opts.Drive)
	if err != nil {
		return nil, err
	}
	if d.size <= 0 {
		return nil, fmt.Errorf("drive %s (node %s): QEMU reports size %d", opts.Drive, d.node, d.size)
	}
	s := &Source{q: &countedQMP{QMP: q}, opts: opts, drv: d, pid: os.Getpid()}
	defer func() {
		if err != nil {
			s.Close() // the result is nil by now: close s itself
		}
	}()
	foundExports, err := s.removeLeftovers()
	if err != nil {
		return nil, fmt.Errorf("removing what an earlier xascript left in QEMU: %w", err)
	}
	if s.dir, err = os.MkdirTemp(opts.TempDir, "xascript-qmp-"); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil { // MkdirTemp's mode is 0700 already; umask can only lower it
		return nil, err
	}
	s.sock = filepath.Join(s.dir, "nbd.sock")
	if err := s.startServer(foundExports); err != nil {
		return nil, err
	}
	s.gen = 1
	if err := call(q, "block-dirty-bitmap-add", s.addArgs(s.bitmap(1)), nil); err != nil {
		return nil, fmt.Errorf("drive %s: %w", opts.Drive, err)
	}
	s.bitmaps = append(s.bitmaps, s.bitmap(1))
	s.dataExp = s.name("data")
	if s.data, err = s.export(ctx, s.dataExp, ""); err != nil {
		return nil, err
	}
	s.cache = newBlockCache(s.data, d.size)
	s.idleCalls = 2 // Poll: query-named-block-nodes, query-blockstats
	if st, err := s.stats(); err == nil {
		s.flushes, s.haveStat = st.Stats.FlushOps, true
	}
	return s, nil
}

func (s *Source) name(kind string) string {
	return Prefix + strconv.Itoa(s.pid) + "-" + kind
}

func (s *Source) bitmap(gen int) string { return s.name(strconv.Itoa(gen)) }

// maxBitmapBits bounds the size of our bitmaps in QEMU (2 MiB of bits).
const maxBitmapBits = 1 << 24

// granularity is the bitmap granularity for a drive of size bytes: the file
// systems' block size (4 KiB) where the bitmap stays within maxBitmapBits,
// else the least power of two that does. QEMU's default for a raw image is
// 64 KiB, which reports (and drops from the cache) 16 blocks for each one
// written.
func granularity(size int64) int64 {
	g := int64(cacheBlock)
	for (size+g-1)/g > maxBitmapBits && g < 1<<30 {
		g <<= 1
	}
	return g
}

// addArgs are block-dirty-bitmap-add's arguments for bitmap name.
func (s *Source) addArgs(name string) map[string]any {
	return map[string]any{"node": s.drv.node, "name": name, "granularity": granularity(s.drv.size)}
}

func (s *Source) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Size is the drive's size in bytes.
func (s *Source) Size() int64 { return s.drv.size }

// Node is the node name whose writes are tracked.
func (s *Source) Node() string { return s.drv.node }

// ReadAt reads the drive through the read-only export, with the blocks no
// poll has reported written since they were read served from a cache.
func (s *Source) ReadAt(p []byte, off int64) (int, error) { return s.cache.ReadAt(p, off) }

// startServer starts QEMU's NBD server on our socket. QEMU has one NBD
// server; if one runs already, QMP does not say where it listens, so it is
// of use to us only if it is our own: a dead xascript's, known by the
// exports it left (foundExports), which it would not have made on a server
// it had not started. That one is stopped and started again on our socket.
func (s *Source) startServer(foundExports bool) error {
	args := map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": s.sock}}}
	err := call(s.q, "nbd-server-start", args, nil)
	if err != nil && strings.Contains(err.Error(), "already running") && foundExports {
		s.logf("stopping the NBD server a dead xascript left running in QEMU")
		if err = call(s.q, "nbd-server-stop", nil, nil); err == nil {
			err = call(s.q, "nbd-server-start", args, nil)
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "already running") {
			return fmt.Errorf("QEMU already runs an NBD server that xascript did not start, and QMP does not tell where it listens; "+
				"xascript needs its own (stop that one with nbd-server-stop if nothing uses it): %w", err)
		}
		return err
	}
	s.started = true
	return nil
}

// export adds a read-only NBD export of the drive named id, exposing
// bitmap ("" for none), and connects to it.
func (s *Source) export(ctx context.Context, id, bitmap string) (*nbd.Client, error) {
	args := map[string]any{"type": "nbd", "id": id, "node-name": s.drv.node, "name": id, "writable": false}
	var contexts []string
	if bitmap != "" {
		args["bitmaps"] = []string{bitmap}
		contexts = []string{"qemu:dirty-bitmap:" + bitmap}
	}
	err := call(s.q, "block-export-add", args, nil)
	if err != nil && strings.Contains(err.Error(), "already in use") {
		// Our last one by that name (the last poll's) is still shutting
		// down: the poll took it for gone when its bitmap was let go.
		if err = s.removeExport(id); err == nil {
			err = call(s.q, "block-export-add", args, nil)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("drive %s: %w", s.opts.Drive, err)
	}
	s.exports = append(s.exports, id)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := nbd.Dial(dctx, s.sock, nbd.ClientOptions{ExportName: id, MetaContexts: contexts})
	if err != nil {
		return nil, fmt.Errorf("QEMU's export %s: %w", id, err)
	}
	if int64(cl.Size()) != s.drv.size {
		cl.Close()
		return nil, fmt.Errorf("QEMU's export %s has %d bytes, query-block said %d", id, cl.Size(), s.drv.size)
	}
	return cl, nil
}

// delExport asks QEMU to delete one of our exports, without waiting: it
// stays listed (and its bitmap busy) until QEMU has let it go.
func (s *Source) delExport(id string) error {
	err := call(s.q, "block-export-del", map[string]any{"id": id, "mode": "hard"}, nil)
	if err != nil && !strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "already shutting down") {
		return err
	}
	return nil
}

// removeExport deletes one of our exports and waits until QEMU has let it
// go (block-export-del returns before that; its bitmap stays busy until
// then).
func (s *Source) removeExport(id string) error {
	if err := s.delExport(id); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var exps []exportInfo
		if err := call(s.q, "query-block-exports", nil, &exps); err != nil {
			return err
		}
		gone := true
		for _, e := range exps {
			if e.ID == id {
				gone = false
			}
		}
		if gone {
			s.exports = remove(s.exports, id)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("export %s still shutting down after 5s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Source) removeBitmap(node, name string) error {
	err := call(s.q, "block-dirty-bitmap-remove", map[string]any{"node": node, "name": name}, nil)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		return err
	}
	s.bitmaps = remove(s.bitmaps, name)
	return nil
}

func remove(list []string, x string) []string {
	out := list[:0]
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// leftoverPID is the pid in a name we give (Prefix+PID+"-..."), or 0.
func leftoverPID(name string) int {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// deadOwner tells whether the xascript that made name is gone: its pid is
// ours (a reused pid: ours cannot have made it yet) or no process has it.
// A live one (a second QMP socket of the same QEMU) keeps its things.
func deadOwner(name string) bool {
	pid := leftoverPID(name)
	if pid == 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	// A killed process stays a zombie until its parent reaps it.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// removeLeftovers removes the exports, then the bitmaps, that dead
// xascripts left on any node; it reports whether there were exports.
func (s *Source) removeLeftovers() (foundExports bool, err error) {
	var exps []exportInfo
	if err := call(s.q, "query-block-exports", nil, &exps); err != nil {
		return false, err
	}
	for _, e := range exps {
		if !deadOwner(e.ID) {
			continue
		}
		s.logf("removing export %s, left by a dead xascript", e.ID)
		foundExports = true
		if err := s.removeExport(e.ID); err != nil {
			return true, err
		}
	}
	var nodes []nodeInfo
	if err := call(s.q, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return foundExports, err
	}
	for _, n := range nodes {
		for _, b := range n.DirtyBitmaps {
			if !deadOwner(b.Name) {
				continue
			}
			s.logf("removing dirty bitmap %s on %s, left by a dead xascript", b.Name, n.NodeName)
			if err := s.removeBitmap(n.NodeName, b.Name); err != nil {
				return foundExports, err
			}
		}
	}
	return foundExports, nil
}

// Close removes every export and bitmap this Source added and stops the NBD
// server if it started it, so that QEMU is left as Open found it. It is safe
// to call more than once and after a failed Open.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.data != nil {
		s.data.Close()
	}
	for _, id := range append([]string(nil), s.exports...) {
		if err := s.removeExport(id); err != nil {
			errs = append(errs, fmt.Errorf("remove export %s: %w", id, err))
		}
	}
	for _, b := range append([]string(nil), s.bitmaps...) {
		if err := s.removeBitmap(s.drv.node, b); err != nil {
			errs = append(errs, fmt.Errorf("remove dirty bitmap %s: %w", b, err))
		}
	}
	if s.started {
		if err := call(s.q, "nbd-server-stop", nil, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return errors.Join(errs...)
}
