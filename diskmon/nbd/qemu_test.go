//go:build qemu

// Interop with QEMU's own NBD client and server (qemu-utils: qemu-io, qemu-img,
// qemu-nbd). Run with
//
//	go test -tags qemu -run QEMU -v ./diskmon/nbd/
//	go test -tags qemu -run '^$' -bench QEMU ./diskmon/nbd/
//
// A missing tool fails the test: install qemu-utils (make testdata-deps).
package nbd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (install qemu-utils, e.g. make testdata-deps): %v", name, err)
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, needTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cpuNanos is the CPU time all threads of process pid have run (schedstat).
func cpuNanos(t testing.TB, pid int) int64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no schedstat for pid %d: %v", pid, err)
	}
	var sum int64
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that exited meanwhile
		}
		var ns int64
		fmt.Sscan(string(data), &ns)
		sum += ns
	}
	return sum
}

func nbdURL(sock string) string { return "nbd+unix:///?socket=" + sock }

// TestQEMUIO drives the server with qemu-io: write, flush, read back with a pattern
// check (qemu-io fails on a mismatch), discard, write zeroes (punched and
// allocated), FUA writes; then checks the image file itself.
func TestQEMUIO(t *testing.T) {
	const size = 8 << 20
	b, img := newImage(t, size)
	var mu sync.Mutex
	ops := map[Op]int{}
	_, sock := startServer(t, b, Options{OnChange: func(op Op, off, length uint64) {
		mu.Lock()
		ops[op]++
		mu.Unlock()
	}})
	out := run(t, "qemu-io", "-f", "raw", nbdURL(sock),
		"-c", "write -P 0xab 0 1M",
		"-c", "flush",
		"-c", "read -P 0xab 0 1M",
		"-c", "discard 1M 1M",
		"-c", "write -z 2M 64k",
		"-c", "read -P 0 2M 64k",
		"-c", "write -z -u 3M 64k", // may unmap
		"-c", "read -P 0 3M 64k",
		"-c", "write -f -P 0x5c 4M 4k", // FUA
		"-c", "read -P 0x5c 4M 4k",
		"-c", "aio_write -P 0x11 5M 64k",
		"-c", "aio_write -P 0x22 6M 64k",
		"-c", "aio_flush",
		"-c", "read -P 0x11 5M 64k",
		"-c", "read -P 0x22 6M 64k",
	)
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "failed") {
		t.Fatalf("qemu-io reported a failure:\n%s", out)
	}
	t.Logf("qemu-io:\n%s", out)

	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size {
		t.Fatalf("image size changed: %d, want %d", len(got), size)
	}
	check := func(off, n int, want byte) {
		t.Helper()
		if !bytes.Equal(got[off:off+n], bytes.Repeat([]byte{want}, n)) {
			t.Errorf("image bytes at %d+%d are not all %#x", off, n, want)
		}
	}
	check(0, 1<<20, 0xab)
	check(2<<20, 64<<10, 0)
	check(3<<20, 64<<10, 0)
	check(4<<20, 4<<10, 0x5c)
	check(5<<20, 64<<10, 0x11)
	check(6<<20, 64<<10, 0x22)
	// Bytes nobody wrote keep the original pattern.
	for _, off := range []int{1<<20 - 1 + 1<<20 + 1, 7 << 20, size - 1} {
		if want := byte(off * 7 >> 3); got[off] != want {
			t.Errorf("untouched byte at %d is %#x, want %#x", off, got[off], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// One request per command: FLUSH stays at 2 only because QEMU sent the FUA
	// write as FUA instead of emulating it with a flush.
	want := map[Op]int{OpWrite: 4, OpFlush: 2, OpTrim: 1, OpWriteZeroes: 2}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("OnChange saw %v, want %v", ops, want)
	}
}

// TestQEMUImg: qemu-img info sees the size; convert copies an image into the export
// and back out, byte for byte.
func TestQEMUImg(t *testing.T) {
	const size = 16 << 20
	b, img := newImage(t, size)
	_, sock := startServer(t, b, Options{})
	info := run(t, "qemu-img", "info", "-f", "raw", nbdURL(sock))
	if !strings.Contains(info, fmt.Sprintf("(%d bytes)", size)) {
		t.Fatalf("qemu-img info does not show %d bytes:\n%s", size, info)
	}

	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i>>9) ^ byte(i)
	}
	copy(data[4<<20:], make([]byte, 1<<20)) // a zero run, which convert may send as zeroes
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, nbdURL(sock))
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("image differs from the source after qemu-img convert into the export")
	}
	dst := filepath.Join(dir, "dst.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", nbdURL(sock), dst)
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, dst)
}

// TestQEMUMultiConn: qemu-nbd's client side is QEMU's; here two qemu-io processes
// work on the export at once while a third verifies, plus our own clients.
func TestQEMUMultiConn(t *testing.T) {
	b, _ := newImage(t, 8<<20)
	_, sock := startServer(t, b, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, pat := range []string{"0x31", "0x32"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := i * 2 << 20
			out, err := exec.Command(needTool(t, "qemu-io"), "-f", "raw", nbdURL(sock),
				"-c", fmt.Sprintf("write -P %s %d 2M", pat, off), "-c", "flush").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("qemu-io %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	run(t, "qemu-io", "-f", "raw", nbdURL(sock), "-c", "read -P 0x31 0 2M", "-c", "read -P 0x32 2M 2M")
}

// TestQEMUClientBlockStatus reads a qcow2 image's allocation and a dirty bitmap
// through qemu-nbd with the package's client.
func TestQEMUClientBlockStatus(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "d.qcow2")
	run(t, "qemu-img", "create", "-f", "qcow2", img, "4M")
	run(t, "qemu-img", "bitmap", "--add", img, "b0")
	run(t, "qemu-io", "-f", "qcow2", img, "-c", "write -P 0x77 1M 64k", "-c", "write -P 0x78 3M 128k")
	sock := filepath.Join(dir, "q.sock")
	cmd := exec.Command(needTool(t, "qemu-nbd"), "-f", "qcow2", "--socket="+sock, "-x", "e", "-r",
		"-A", "--bitmap=b0", "--persistent", img)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var c *Client
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		c, err = Dial(ctx, sock, ClientOptions{ExportName: "e", MetaContexts: []string{"base:allocation", "qemu:dirty-bitmap:b0"}})
		cancel()
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("qemu-nbd never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()
	if c.Size() != 4<<20 {
		t.Fatalf("size %d", c.Size())
	}
	got := map[string][][2]uint64{}
	for _, ctxName := range []string{"base:allocation", "qemu:dirty-bitmap:b0"} {
		off := uint64(0)
		for off < c.Size() {
			m, err := c.BlockStatus(off, uint32(c.Size()-off), false)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range m[ctxName] {
				if off >= c.Size() {
					break
				}
				bit := e.Flags & 1 // HOLE for base:allocation, DIRTY for the bitmap
				if ctxName == "base:allocation" {
					bit ^= 1 // record allocated ranges
				}
				if bit != 0 {
					got[ctxName] = append(got[ctxName], [2]uint64{off, uint64(e.Length)})
				}
				off += uint64(e.Length)
			}
		}
	}
	t.Logf("ranges: %v", got)
	// qcow2 clusters are 64 KiB: exactly the written clusters are allocated and dirty.
	want := [][2]uint64{{1 << 20, 64 << 10}, {3 << 20, 128 << 10}}
	for _, name := range []string{"base:allocation", "qemu:dirty-bitmap:b0"} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s: ranges %v, want %v", name, got[name], want)
		}
	}
	buf := make([]byte, 64<<10)
	if _, err := c.ReadAt(buf, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, bytes.Repeat([]byte{0x77}, len(buf))) {
		t.Fatal("read through qemu-nbd returned the wrong data")
	}
}

// BenchmarkQEMUBench compares this server with qemu-nbd serving the same fully
// allocated image, measured by qemu-img bench (QEMU's NBD client) with 64 KiB
// and 1 MiB requests at queue depth 1 and 16. MB/s is what to compare on a quiet
// machine; server-cpu-us/MiB is steadier on a loaded one.
func BenchmarkQEMUBench(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	img := filepath.Join(dir, "bench.img")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>12)
	}
	if err := os.WriteFile(img, data, 0o600); err != nil {
		b.Fatal(err)
	}
	servers := []struct {
		name  string
		start func(b *testing.B) (string, int)
	}{
		{"xascript", func(b *testing.B) (string, int) {
			fb, err := OpenFile(img, false)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { fb.Close() })
			_, sock := startServer(b, fb, Options{Logf: func(string, ...any) {}})
			return sock, os.Getpid()
		}},
		{"xascript-seq", func(b *testing.B) (string, int) {
			fb, err := OpenFile(img, false)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { fb.Close() })
			_, sock := startServer(b, fb, Options{Logf: func(string, ...any) {}, MaxInFlight: 1})
			return sock, os.Getpid()
		}},
		{"qemu-nbd", func(b *testing.B) (string, int) {
			sock := filepath.Join(b.TempDir(), "q.sock")
			cmd := exec.Command(needTool(b, "qemu-nbd"), "-f", "raw", "--socket="+sock, "-x", "", "--shared=8", "--persistent", img)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			for i := 0; i < 100; i++ {
				if _, err := os.Stat(sock); err == nil {
					return sock, cmd.Process.Pid
				}
				time.Sleep(50 * time.Millisecond)
			}
			b.Fatal("qemu-nbd did not create its socket")
			return "", 0
		}},
	}
	sizes := []struct {
		name       string
		kib, count int
	}{{"64k", 64, 2000}, {"1M", 1024, 128}}
	for _, srv := range servers {
		for _, mode := range []string{"read", "write"} {
			for _, sz := range sizes {
				for _, depth := range []int{1, 16} {
					b.Run(fmt.Sprintf("server=%s/op=%s/size=%s/depth=%d", srv.name, mode, sz.name, depth), func(b *testing.B) {
						sock, pid := srv.start(b)
						count := sz.count
						args := []string{"bench", "-f", "raw", "-c", fmt.Sprint(count), "-d", fmt.Sprint(depth), "-s", sz.name}
						if mode == "write" {
							args = append(args, "-w")
						}
						args = append(args, nbdURL(sock))
						b.SetBytes(int64(count * sz.kib << 10))
						cpu0 := cpuNanos(b, pid)
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if out, err := exec.Command(needTool(b, "qemu-img"), args...).CombinedOutput(); err != nil {
								b.Fatalf("qemu-img bench: %v\n%s", err, out)
							}
						}
						b.StopTimer()
						// Server CPU per MiB moved: on this shared machine wall-clock MB/s
						// swings with the neighbours' load, CPU time much less.
						mib := float64(b.N) * float64(count*sz.kib) / 1024
						b.ReportMetric(float64(cpuNanos(b, pid)-cpu0)/1e3/mib, "server-cpu-us/MiB")
					})
				}
			}
		}
	}
}

// TestQEMUSystemDrive attaches the export to qemu-system-x86_64 the way a guest's
// disk is attached (-drive file=nbd+unix://...) and drives that block device through
// the monitor's qemu-io command, so the emulator's own NBD client negotiates and
// writes; no guest is booted.
func TestQEMUSystemDrive(t *testing.T) {
	b, img := newImage(t, 8<<20)
	_, sock := startServer(t, b, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, needTool(t, "qemu-system-x86_64"), "-nodefaults", "-display", "none", "-S",
		"-accel", "tcg", "-smp", "1", "-m", "32",
		"-drive", "file="+nbdURL(sock)+",format=raw,if=virtio,id=d0,cache=writeback",
		"-monitor", "stdio")
	cmd.Stdin = strings.NewReader(`qemu-io d0 "write -P 0x42 1M 128k"` + "\n" +
		`qemu-io d0 "write -z 2M 64k"` + "\n" +
		`qemu-io d0 "flush"` + "\n" +
		`qemu-io d0 "read -P 0x42 1M 128k"` + "\n" +
		"quit\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-system-x86_64: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "failed") || strings.Contains(string(out), "rror") {
		t.Fatalf("monitor reported a failure:\n%s", out)
	}
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1<<20:1<<20+128<<10], bytes.Repeat([]byte{0x42}, 128<<10)) ||
		!bytes.Equal(got[2<<20:2<<20+64<<10], make([]byte, 64<<10)) {
		t.Fatalf("image does not hold what QEMU wrote; monitor said:\n%s", out)
	}
}
