package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Unit says what a step counts.
type Unit int

const (
	// Bytes are shown in KiB, MiB, GiB.
	Bytes Unit = iota
	// Items are shown as a plain count with the step's ItemName.
	Items
	// Phases are steps of work that cannot be measured: the bar shows
	// which one runs (Bar.Phase) and the time spent, the final line no
	// amount.
	Phases
)

// Step describes one long piece of work.
type Step struct {
	// Name is what the work is on: a file's base name, "kernel".
	Name string
	// Doing and Done are the verb while it runs and when it has ended:
	// "decompressing", "decompressed".
	Doing, Done string
	// Note is appended to the final line: " (later runs use the cache)".
	Note string
	// Total is the amount of work in Unit, 0 when unknown.
	Total int64
	Unit  Unit
	// ItemName names Items in the final line ("units", "phases").
	ItemName string
}

// Defaults for Meter's Delay and Interval.
const (
	DefaultDelay    = 300 * time.Millisecond
	DefaultInterval = 100 * time.Millisecond
)

// Meter writes the progress of steps to one stream. It is safe for
// concurrent use; steps may nest (the innermost is drawn).
type Meter struct {
	w   io.Writer
	tty bool
	// Delay is how long a step runs before anything of it is shown;
	// Interval how often a terminal's bar is redrawn.
	Delay, Interval time.Duration

	mu     sync.Mutex
	active []*Bar // the bars on screen, innermost last
	drawn  bool   // the terminal line holds a bar
}

// New returns a Meter writing to w; tty selects the terminal form (see
// IsTerminal).
func New(w io.Writer, tty bool) *Meter {
	return &Meter{w: w, tty: tty, Delay: DefaultDelay, Interval: DefaultInterval}
}

// ForStderr is New(os.Stderr, IsTerminal(os.Stderr)), or nil (silence)
// when quiet.
func ForStderr(quiet bool) *Meter {
	if quiet {
		return nil
	}
	return New(os.Stderr, IsTerminal(os.Stderr))
}

// IsTerminal tells whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// Through SyscallConn, not Fd, which would switch a pipe to blocking
	// mode.
	sc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	sc.Control(func(fd uintptr) {
		_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		tty = err == nil
	})
	return tty
}

// Bar is one running step. Its methods may be called from any goroutine;
// on a nil Bar they do nothing.
type Bar struct {
	m     *Meter
	step  Step
	start time.Time
	done  atomic.Int64
	total atomic.Int64

	mu     sync.Mutex
	result string // replaces the counted amount in the final line
	doing  string // Step.Doing, or the phase that runs
	shown  bool   // past Delay: the final line is due
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Start begins a step. On a nil Meter it returns nil.
func (m *Meter) Start(s Step) *Bar {
	if m == nil {
		return nil
	}
	b := &Bar{m: m, step: s, start: time.Now(), stop: make(chan struct{}), doing: s.Doing}
	b.total.Store(s.Total)
	m.mu.Lock()
	m.active = append(m.active, b)
	m.mu.Unlock()
	b.wg.Add(1)
	go b.run()
	return b
}

// Add counts n more units done.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.done.Add(n)
	}
}

// SetTotal sets the amount of work once it is known.
func (b *Bar) SetTotal(total int64) {
	if b != nil {
		b.total.Store(total)
	}
}

// Phase says what the step does now ("decoding kallsyms").
func (b *Bar) Phase(doing string) {
	if b != nil {
		b.mu.Lock()
		b.doing = doing
		b.mu.Unlock()
	}
}

// SetResult makes the final line say result ("128.3 MiB") instead of the
// amount counted (which may count the input while the result is the
// output).
func (b *Bar) SetResult(result string) {
	if b != nil {
		b.mu.Lock()
		b.result = result
		b.mu.Unlock()
	}
}

// Done ends the step. After Delay, a step that succeeded leaves its one
// final line; a failed one leaves nothing (its error is reported
// elsewhere), and a terminal's bar is erased either way.
func (b *Bar) Done(err error) {
	if b == nil {
		return
	}
	close(b.stop)
	b.wg.Wait()
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, a := range m.active {
		if a == b {
			m.active = append(m.active[:i], m.active[i+1:]...)
			break
		}
	}
	elapsed := time.Since(b.start)
	var out strings.Builder
	if m.drawn {
		out.WriteString("\r\x1b[K")
		m.drawn = false
	}
	if err == nil && elapsed >= m.Delay {
		b.mu.Lock()
		amount := b.result
		b.mu.Unlock()
		if amount == "" && b.step.Unit != Phases {
			amount = b.amount(b.done.Load())
		}
		if amount != "" {
			amount = " " + amount
		}
		fmt.Fprintf(&out, "xascript: %s: %s%s in %.1f s%s\n", b.step.Name, b.step.Done, amount, elapsed.Seconds(), b.step.Note)
	}
	if out.Len() > 0 {
		io.WriteString(m.w, out.String())
	}
}

// run redraws a terminal's bar from Delay on until Done.
func (b *Bar) run() {
	defer b.wg.Done()
	if !b.m.tty {
		return
	}
	delay := time.NewTimer(b.m.Delay)
	defer delay.Stop()
	select {
	case <-b.stop:
		return
	case <-delay.C:
	}
	tick := time.NewTicker(max(b.m.Interval, time.Millisecond))
	defer tick.Stop()
	for {
		b.draw()
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
	}
}

// barWidth is the width of the [====>    ] part.
const barWidth = 24

// draw writes the bar, if it is the innermost step.
func (b *Bar) draw() {
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.active) == 0 || m.active[len(m.active)-1] != b {
		return
	}
	io.WriteString(m.w, "\r"+b.line(time.Since(b.start))+"\x1b[K")
	m.drawn = true
}

// line is the bar's text after elapsed.
func (b *Bar) line(elapsed time.Duration) string {
	done, total := b.done.Load(), b.total.Load()
	secs := elapsed.Seconds()
	var s strings.Builder
	b.mu.Lock()
	doing := b.doing
	b.mu.Unlock()
	fmt.Fprintf(&s, "xascript: %s: %s ", b.step.Name, doing)
	if b.step.Unit == Phases {
		s.WriteString(clock(elapsed))
		return s.String()
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		fill := int(frac * barWidth)
		s.WriteByte('[')
		s.WriteString(strings.Repeat("=", fill))
		if fill < barWidth {
			s.WriteByte('>')
			s.WriteString(strings.Repeat(" ", barWidth-fill-1))
		}
		fmt.Fprintf(&s, "] %3.0f%%", 100*frac)
	} else {
		s.WriteString(b.amount(done))
	}
	if secs > 0 && done > 0 {
		fmt.Fprintf(&s, "  %s/s", b.amount(int64(float64(done)/secs)))
		if total > 0 && done < total {
			left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
			fmt.Fprintf(&s, "  %s left", clock(left))
		}
	}
	if total <= 0 || done == 0 {
		fmt.Fprintf(&s, "  %s", clock(elapsed))
	}
	return s.String()
}

// amount formats n in the step's unit.
func (b *Bar) amount(n int64) string {
	if b.step.Unit == Items {
		if b.step.ItemName != "" {
			return fmt.Sprintf("%d %s", n, b.step.ItemName)
		}
		return fmt.Sprint(n)
	}
	return FormatBytes(n)
}

// FormatBytes writes n bytes in the largest binary unit below it.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// clock writes d as m:ss, or h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
