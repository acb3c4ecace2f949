package main

import (
	"fmt"
	"io"
	"math/rand"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/xen"
)

// benchReport is what `xascript bench` measures on a target: how fast it
// reads, as a user's monitor would see it. Figures, never pass/fail.
type benchReport struct {
	Target string `json:"target"`
	// Sequential 4 KiB physical reads over the memory map.
	SeqPages      int     `json:"seq_pages"`
	SeqFailed     int     `json:"seq_failed_pages"`
	SeqPagesPerS  float64 `json:"seq_pages_per_s"`
	SeqMiBPerS    float64 `json:"seq_mib_per_s"`
	RandomReads   int     `json:"random_reads"`
	RandomNsRead  float64 `json:"random_ns_per_read"` // 8-byte reads at random pages
	VirtU32Reads  int     `json:"virt_u32_reads"`
	VirtU32Ns     float64 `json:"virt_u32_ns"` // Go: translate + read of jiffies
	LuaU32Reads   int     `json:"lua_u32_reads"`
	LuaU32Ns      float64 `json:"lua_read_u32_ns"` // a Lua loop calling read_u32
	FrameCache    string  `json:"frame_cache,omitempty"`
	FrameHitRate  float64 `json:"frame_cache_hit_rate,omitempty"`
	FramesMapped  uint64  `json:"frames_mapped,omitempty"`
	FramesRefused uint64  `json:"frames_refused,omitempty"`
}

// benchLimits bound the work: a bench must finish in seconds even on a
// large guest.
const (
	benchSeqBytes    = 64 << 20
	benchRandomReads = 20000
	benchU32Reads    = 200000
)

func runBench(o *options, stdout, stderr io.Writer) int {
	if !o.targetGiven() {
		fmt.Fprintln(stderr, "xascript bench: "+giveTarget)
		return exitUsage
	}
	g, err := openGuest(o)
	if err != nil {
		printError(stderr, "xascript bench", err, o.verbose)
		return exitTarget
	}
	defer g.Close()
	r := benchReport{Target: g.target.Kind()}
	benchPhys(g.target, &r)
	if err := benchVirt(g, &r); err != nil {
		printError(stderr, "xascript bench", err, o.verbose)
		return exitTarget
	}
	if x, ok := g.target.(*xen.Target); ok {
		s := x.Stats()
		r.FrameCache = fmt.Sprintf("%d hits, %d misses", s.Hits, s.Misses)
		r.FrameHitRate, r.FramesMapped, r.FramesRefused = s.HitRate(), s.FramesMapped, s.FramesFailed
	}
	if o.json {
		if err := writeJSONReport(stdout, &r); err != nil {
			printError(stderr, "xascript bench", err, o.verbose)
			return exitScript
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "target:            %s\n", r.Target)
	fmt.Fprintf(stdout, "sequential read:   %d pages (%d failed): %.0f pages/s, %.1f MiB/s\n", r.SeqPages, r.SeqFailed, r.SeqPagesPerS, r.SeqMiBPerS)
	fmt.Fprintf(stdout, "random 8-byte:     %d reads, %.0f ns each\n", r.RandomReads, r.RandomNsRead)
	fmt.Fprintf(stdout, "virtual u32 (Go):  %d reads, %.0f ns each\n", r.VirtU32Reads, r.VirtU32Ns)
	fmt.Fprintf(stdout, "read_u32 (Lua):    %d reads, %.0f ns each\n", r.LuaU32Reads, r.LuaU32Ns)
	if r.FrameCache != "" {
		fmt.Fprintf(stdout, "frame cache:       %s (hit rate %.1f%%), %d frames mapped, %d refused\n", r.FrameCache, 100*r.FrameHitRate, r.FramesMapped, r.FramesRefused)
	}
	return exitOK
}

// benchPhys reads up to benchSeqBytes of the memory map page by page, then
// benchRandomReads 8-byte reads at random pages of it.
func benchPhys(t vmi.Target, r *benchReport) {
	var pages []uint64
	for _, m := range t.MemoryMap() {
		for a := m.Start &^ (vmi.PageSize - 1); a < m.End && len(pages) < benchSeqBytes/vmi.PageSize; a += vmi.PageSize {
			pages = append(pages, a)
		}
	}
	if len(pages) == 0 {
		return
	}
	buf := make([]byte, vmi.PageSize)
	start := time.Now()
	for _, pa := range pages {
		if t.ReadPhys(buf, pa) != nil {
			r.SeqFailed++
		}
	}
	d := time.Since(start).Seconds()
	r.SeqPages = len(pages)
	r.SeqPagesPerS = float64(len(pages)) / d
	r.SeqMiBPerS = float64(len(pages)-r.SeqFailed) * vmi.PageSize / (1 << 20) / d
	rng := rand.New(rand.NewSource(1))
	start = time.Now()
	for range benchRandomReads {
		t.ReadPhys(buf[:8], pages[rng.Intn(len(pages))]+uint64(rng.Intn(vmi.PageSize-8)))
	}
	r.RandomReads = benchRandomReads
	r.RandomNsRead = float64(time.Since(start).Nanoseconds()) / benchRandomReads
}

// benchVirt times reads of a kernel variable through the page tables, from
// Go and from a Lua loop.
func benchVirt(g *guest, r *benchReport) error {
	va, err := g.kernel.Symbol("jiffies")
	if err != nil {
		return err
	}
	start := time.Now()
	for range benchU32Reads {
		if _, err := g.kernel.ReadUintVirt(va, 4); err != nil {
			return fmt.Errorf("read jiffies at %#x: %w", va, err)
		}
	}
	r.VirtU32Reads = benchU32Reads
	r.VirtU32Ns = float64(time.Since(start).Nanoseconds()) / benchU32Reads

	rt := runtime.New(runtime.Config{Stdout: io.Discard, Env: &bindings.Env{Guest: g.kernel}})
	defer rt.Close()
	script := fmt.Sprintf("local a = symbol(%q)\nfor i = 1, %d do read_u32(a) end", "jiffies", benchU32Reads)
	start = time.Now()
	if err := rt.RunString(script, "bench", nil); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	r.LuaU32Reads = benchU32Reads
	r.LuaU32Ns = secs * 1e9 / benchU32Reads
	return nil
}
