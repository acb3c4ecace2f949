package main

import (
	"fmt"
	"os"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// guest is an open target with its located kernel.
type guest struct {
	target vmi.Target
	kernel *linux.Kernel
}

func (g *guest) Close() error { return g.target.Close() }

func unpackOptions(o *options) unpack.Options {
	opt := unpack.Options{CacheDir: o.cacheDir, NoCache: o.noCache}
	if !o.quiet {
		opt.Progress = os.Stderr
	}
	return opt
}

// openGuest opens the dump and locates the kernel in it.
func openGuest(o *options) (*guest, error) {
	return openGuestWith(o, o.isf)
}

// openGuestWith opens the dump with isfIn as the ISF input ("" for none).
func openGuestWith(o *options, isfIn string) (*guest, error) {
	t, err := dump.Open(o.file, dump.Options{Options: unpackOptions(o)})
	if err != nil {
		return nil, err // the dump package names the file and what is wrong
	}
	k, err := linux.Open(t, linux.Options{SymbolsPath: o.symbols, BTFPath: o.btf, DWARFPath: o.dwarf, ISFPath: isfIn, Unpack: unpackOptions(o), NoProfileCache: o.noProfileCache})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%s: %w", o.file, err)
	}
	return &guest{target: t, kernel: k}, nil
}
