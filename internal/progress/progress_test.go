package progress

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// buffer is a bytes.Buffer safe for the bar's goroutine and the test.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var dumpStep = Step{Name: "mem.elf.zst", Doing: "decompressing", Done: "decompressed", Note: " (later runs use the cache)",
	Total: 1 << 30, Unit: Bytes}

// TestNotTerminal: a log gets one line per step, at its end, and nothing
// while it runs.
func TestNotTerminal(t *testing.T) {
	var out buffer
	m := New(&out, false)
	m.Delay, m.Interval = 0, time.Millisecond
	b := m.Start(dumpStep)
	b.Add(1 << 29)
	time.Sleep(20 * time.Millisecond)
	if out.String() != "" {
		t.Fatalf("wrote %q while the step ran", out.String())
	}
	b.Add(1 << 29)
	b.SetResult("4.0 GiB")
	b.Done(nil)
	if !regexp.MustCompile(`^xascript: mem\.elf\.zst: decompressed 4\.0 GiB in \d+\.\d s \(later runs use the cache\)\n$`).MatchString(out.String()) {
		t.Errorf("got %q", out.String())
	}
}

// TestQuickAndFailedStepsAreSilent: a step shorter than Delay shows
// nothing; a failed one leaves no line (its error is reported elsewhere).
func TestQuickAndFailedStepsAreSilent(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var out buffer
		m := New(&out, tty)
		m.Delay = time.Hour
		b := m.Start(dumpStep)
		b.Add(10)
		b.Done(nil)
		m.Delay, m.Interval = 0, time.Millisecond
		b = m.Start(dumpStep)
		b.Add(10)
		b.Done(errors.New("corrupt"))
		if got := out.String(); strings.Contains(got, "decompressed") || (!tty && got != "") {
			t.Errorf("tty %v: %q", tty, got)
		}
	}
}

// TestTerminal: the terminal form redraws one line in place with the
// percentage, rate and time left, and ends with the same line as a log.
func TestTerminal(t *testing.T) {
	var out buffer
	m := New(&out, true)
	m.Delay, m.Interval = 0, time.Millisecond
	b := m.Start(dumpStep)
	b.Add(1 << 29)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "50%") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.Add(1 << 29)
	b.Done(nil)
	got := out.String()
	bar := regexp.MustCompile(`\rxascript: mem\.elf\.zst: decompressing \[={12}> {11}\]  50%  [0-9.]+ [KMG]iB/s  \d+:\d\d left\x1b\[K`)
	if !bar.MatchString(got) {
		t.Errorf("no half-way bar in %q", got)
	}
	if strings.Contains(got, "\n") && strings.Index(got, "\n") != len(got)-1 {
		t.Errorf("the bar spans lines: %q", got)
	}
	if !regexp.MustCompile(`\r\x1b\[Kxascript: mem\.elf\.zst: decompressed 1\.0 GiB in \d+\.\d s \(later runs use the cache\)\n$`).MatchString(got) {
		t.Errorf("the bar is not replaced by the final line: %q", got)
	}
}

// TestTerminalUnknownTotal: without a total the bar shows the amount, the
// rate and the time spent.
func TestTerminalUnknownTotal(t *testing.T) {
	var out buffer
	m := New(&out, true)
	m.Delay, m.Interval = 0, time.Millisecond
	b := m.Start(Step{Name: "vmlinux", Doing: "indexing DWARF", Done: "indexed", Unit: Items, ItemName: "units"})
	b.Add(42)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "42 units") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.Done(nil)
	if !regexp.MustCompile(`\rxascript: vmlinux: indexing DWARF 42 units  \d+ units/s  0:\d\d\x1b\[K`).MatchString(out.String()) {
		t.Errorf("got %q", out.String())
	}
}

// TestNested: an inner step takes the line; the outer one's final line
// still comes.
func TestNested(t *testing.T) {
	var out buffer
	m := New(&out, false)
	m.Delay = 0
	outer := m.Start(Step{Name: "kernel", Done: "derived the profile", Unit: Items, ItemName: "phases"})
	inner := m.Start(Step{Name: "vmlinux", Done: "indexed", Unit: Items, ItemName: "units"})
	inner.Add(3)
	inner.Done(nil)
	outer.Add(2)
	outer.Done(nil)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "xascript: vmlinux: indexed 3 units in ") ||
		!strings.HasPrefix(lines[1], "xascript: kernel: derived the profile 2 phases in ") {
		t.Errorf("got %q", lines)
	}
}

// TestNilIsQuiet: --quiet gives a nil Meter, whose bars do nothing.
func TestNilIsQuiet(t *testing.T) {
	var m *Meter
	b := m.Start(dumpStep)
	if b != nil {
		t.Fatal("a nil Meter started a bar")
	}
	b.Add(1)
	b.SetTotal(2)
	b.SetResult("x")
	b.Done(nil)
	if ForStderr(true) != nil {
		t.Error("ForStderr(quiet) is not nil")
	}
}

// TestPhases: a step that cannot be measured shows what it does and the
// time spent; its final line has no amount.
func TestPhases(t *testing.T) {
	var out buffer
	m := New(&out, true)
	m.Delay, m.Interval = 0, time.Millisecond
	b := m.Start(Step{Name: "kernel", Doing: "locating the kernel", Done: "profile derived from memory", Unit: Phases})
	b.Phase("decoding kallsyms")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "decoding kallsyms") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.Done(nil)
	if !regexp.MustCompile(`\rxascript: kernel: decoding kallsyms 0:\d\d\x1b\[K.*\r\x1b\[Kxascript: kernel: profile derived from memory in \d+\.\d s\n$`).MatchString(out.String()) {
		t.Errorf("got %q", out.String())
	}
}
