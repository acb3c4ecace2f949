package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/qemu"
	"github.com/xascript/xascript/vmi/xen"
)

// guest is an open target with its located kernel.
type guest struct {
	target vmi.Target
	kernel *linux.Kernel
}

// Close resumes a guest that --pause or a script paused, then releases the
// target. Only what xascript paused is resumed (vmi.Pauser): a guest found
// paused, or paused by an operator meanwhile, stays paused.
func (g *guest) Close() error {
	var err error
	if p, ok := g.target.(vmi.Pauser); ok {
		err = p.Resume()
	}
	if cerr := g.target.Close(); err == nil {
		err = cerr
	}
	return err
}

func unpackOptions(o *options) unpack.Options {
	return unpack.Options{CacheDir: o.cacheDir, NoCache: o.noCache, Progress: progressMeter(o.quiet)}
}

// stderrMeter reports slow one-time work on stderr: one Meter for the
// process, so that nested steps share the terminal line.
var stderrMeter = sync.OnceValue(func() *progress.Meter {
	m := progress.ForStderr(false)
	// Tests set the delay to 0 so that work shows whatever the machine's
	// speed; no user needs it.
	if d, err := time.ParseDuration(os.Getenv(progressDelayEnv)); err == nil && d >= 0 {
		m.Delay = d
	}
	return m
})

// progressDelayEnv overrides how long work runs before it is shown.
const progressDelayEnv = "XASCRIPT_TEST_PROGRESS_DELAY"

// progressMeter is where long work reports its progress: nothing with
// --quiet.
func progressMeter(quiet bool) *progress.Meter {
	if quiet {
		return nil
	}
	return stderrMeter()
}

// openGuest opens the dump and locates the kernel in it.
func openGuest(o *options) (*guest, error) {
	return openGuestWith(o, o.isf)
}

// openGuestWith opens the dump with isfIn as the ISF input ("" for none).
func openGuestWith(o *options, isfIn string) (*guest, error) {
	var t vmi.Target
	var err error
	n := 0
	for _, v := range []string{o.file, o.qemu, o.dom} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("give one target: --file, --qemu or --dom")
	}
	switch {
	case o.qemu != "":
		live, err := qemu.Open(o.qemu, qemu.Options{Writable: o.allowWrite})
		if err != nil {
			return nil, err
		}
		t = live
	case o.dom != "":
		dom, err := xen.Open(o.dom, xen.Options{Writable: o.allowWrite})
		if err != nil {
			return nil, err
		}
		t = dom
	default:
		uo := unpackOptions(o)
		uo.Writable = o.allowWrite
		t, err = dump.Open(o.file, dump.Options{Options: uo})
		if err != nil {
			return nil, err // the dump package names the file and what is wrong
		}
	}
	if o.pause {
		if live, ok := t.(vmi.Pauser); ok {
			if err := live.Pause(); err != nil {
				t.Close()
				return nil, err
			}
		}
	}
	k, err := linux.Open(t, linux.Options{SymbolsPath: o.symbols, BTFPath: o.btf, DWARFPath: o.dwarf, ISFPath: isfIn, Unpack: unpackOptions(o), NoProfileCache: o.noProfileCache})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%s: %w", o.targetName(), err)
	}
	return &guest{target: t, kernel: k}, nil
}
