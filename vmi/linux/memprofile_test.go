package linux

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// The profile cache and hostile guests: a guest that forges its kallsyms
// tables or BTF must not poison the profile of another guest with the same
// banner and build id. The forged guests are the committed x86_64-4level
// image with bytes patched in a copy (patched, patchedMany).

func truthVA(t *testing.T, tr vmciTruth, name string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(tr.Symbols[name], "0x"), 16, 64)
	if err != nil {
		t.Fatalf("truth.json symbol %s: %v", name, err)
	}
	return v
}

func symbolList(tab *symbols.Table) []symbols.Symbol {
	var out []symbols.Symbol
	tab.Each(func(s symbols.Symbol) bool { out = append(out, s); return true })
	return out
}

func hasNote(k *Kernel, sub string) bool {
	for _, n := range k.Describe().Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

func cacheEntries(t *testing.T, cache unpack.Options) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(cache.CacheDir, "profiles", "*", "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestProfileCacheForgedKallsyms: a guest whose kallsyms_offsets say one
// symbol is a byte further on has the banner and build id of the genuine
// guest. Its profile, cached first, is not used for the genuine guest,
// which gets its own entry; afterwards each guest gets its own profile
// from the cache.
func TestProfileCacheForgedKallsyms(t *testing.T) {
	tg, tr, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	ref, err := Open(tg, Options{NoProfileCache: true, Unpack: unpack.Options{NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	// Pick a symbol i with room to move by one without leaving table
	// order. 6.1's "absolute per-cpu" encoding: a negative offset o means
	// relative_base - 1 - o, a non-negative one is an absolute per-cpu
	// address; so o-1 moves a kernel symbol one byte up.
	pa, err := ref.Space.Translate(truthVA(t, tr, "kallsyms_offsets"))
	if err != nil {
		t.Fatal(err)
	}
	n := ref.Syms.Len()
	offs := make([]byte, 4*n)
	if err := tg.ReadPhys(offs, pa); err != nil {
		t.Fatal(err)
	}
	at := -1
	for i := n / 2; i < n-1; i++ {
		a, b := int32(binary.LittleEndian.Uint32(offs[4*i:])), int32(binary.LittleEndian.Uint32(offs[4*i+4:]))
		if a < 0 && b < 0 && a-b > 1 {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatal("no symbol to move")
	}
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], binary.LittleEndian.Uint32(offs[4*at:])-1)
	forged := patched{tg, pa + uint64(4*at), v[:]}

	cache := unpack.Options{CacheDir: t.TempDir()}
	kf, err := Open(forged, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(kf.SymbolsFrom, "profile cache") {
		t.Fatalf("first open came from the cache: %s", kf.SymbolsFrom)
	}
	// The forged table decodes to one moved symbol, same banner.
	want, got := symbolList(ref.Syms), symbolList(kf.Syms)
	if len(want) != len(got) || kf.Layout.Banner != ref.Layout.Banner {
		t.Fatalf("forged guest: %d symbols, banner %q; genuine %d, %q", len(got), kf.Layout.Banner, len(want), ref.Layout.Banner)
	}
	var moved symbols.Symbol
	for i := range want {
		if want[i] != got[i] {
			if moved.Name != "" {
				t.Fatalf("more than one symbol differs: %v, %v", moved, got[i])
			}
			moved = want[i]
			if got[i].Addr != want[i].Addr+1 {
				t.Fatalf("forged %v, genuine %v", got[i], want[i])
			}
		}
	}
	if moved.Name == "" {
		t.Fatal("the patch moved no symbol")
	}
	if len(cacheEntries(t, cache)) != 1 {
		t.Fatalf("cache entries %v", cacheEntries(t, cache))
	}

	// The genuine guest: the forged entry is found by banner and build id,
	// and refused on its tables.
	kg, err := Open(tg, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(kg.SymbolsFrom, "profile cache") {
		t.Errorf("genuine guest got the forged guest's profile: %s", kg.SymbolsFrom)
	}
	if !hasNote(kg, "kallsyms tables at physical") {
		t.Errorf("no note on the refused entry: %q", kg.Describe().Notes)
	}
	if !sameAddr(kg.Syms, moved) {
		t.Errorf("genuine guest: a symbol list that disagrees with its own tables at %s", moved.Name)
	}
	// Now both are cached, and each guest gets its own.
	if e := cacheEntries(t, cache); len(e) != 2 {
		t.Fatalf("cache entries %v, want two", e)
	}
	for _, c := range []struct {
		name string
		tg   vmi.Target
		want symbols.Symbol
	}{{"genuine", tg, moved}, {"forged", forged, symbols.Symbol{Addr: moved.Addr + 1, Type: moved.Type, Name: moved.Name}}} {
		k, err := Open(c.tg, Options{Unpack: cache})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k.SymbolsFrom, "profile cache") {
			t.Errorf("%s guest, third open: not from the cache: %s", c.name, k.SymbolsFrom)
		}
		if !sameAddr(k.Syms, c.want) {
			t.Errorf("%s guest, third open: %s is not at %#x", c.name, c.want.Name, c.want.Addr)
		}
	}
}

// sameAddr: tab has s (by name, type and address; names repeat).
func sameAddr(tab *symbols.Table, s symbols.Symbol) bool {
	found := false
	tab.Each(func(x symbols.Symbol) bool {
		found = x == s
		return !found
	})
	return found
}

// btfStringPatch returns where "\x00comm\x00" sits in the BTF string
// section of the guest's BTF at physical btfPA, to rename every member
// called comm.
func btfStringPatch(t *testing.T, tg vmi.Target, btfPA uint64) uint64 {
	t.Helper()
	hdr := make([]byte, 24)
	if err := tg.ReadPhys(hdr, btfPA); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(hdr) != 0xeb9f {
		t.Fatalf("no BTF at %#x", btfPA)
	}
	hdrLen := uint64(binary.LittleEndian.Uint32(hdr[4:]))
	strOff, strLen := binary.LittleEndian.Uint32(hdr[16:]), binary.LittleEndian.Uint32(hdr[20:])
	strs := make([]byte, strLen)
	at := btfPA + hdrLen + uint64(strOff)
	if err := tg.ReadPhys(strs, at); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(strs, []byte("\x00comm\x00"))
	if i < 0 {
		t.Fatal("no \"comm\" in the BTF strings")
	}
	return at + uint64(i) + 4 // the second 'm'
}

// TestProfileCacheForgedBTF: a guest whose BTF renames task_struct.comm
// (its kallsyms untouched) is cached first; the genuine guest must not get
// its types, but its own BTF.
func TestProfileCacheForgedBTF(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	refCache := unpack.Options{CacheDir: t.TempDir()}
	ref, err := Open(tg, Options{Unpack: refCache})
	if err != nil {
		t.Fatal(err)
	}
	commOff, err := ref.Offsetof("task_struct", "comm")
	if err != nil {
		t.Fatal(err)
	}
	metas := cacheEntries(t, refCache)
	if len(metas) != 1 {
		t.Fatalf("cache entries %v", metas)
	}
	var m profileMeta
	raw, err := os.ReadFile(metas[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	btfPA, err := strconv.ParseUint(strings.TrimPrefix(m.BTFPA, "0x"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	forged := patched{tg, btfStringPatch(t, tg, btfPA), []byte("n")}

	cache := unpack.Options{CacheDir: t.TempDir()}
	kf, err := Open(forged, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kf.Offsetof("task_struct", "comm"); err == nil {
		t.Fatal("the forged BTF still has task_struct.comm")
	}
	if off, err := kf.Offsetof("task_struct", "comn"); err != nil || off != commOff {
		t.Fatalf("forged task_struct.comn at %d, %v", off, err)
	}

	kg, err := Open(tg, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	// Its kallsyms are the cached entry's: symbols come from the cache.
	if !strings.HasPrefix(kg.SymbolsFrom, "profile cache") {
		t.Errorf("genuine guest's symbols: %s", kg.SymbolsFrom)
	}
	if off, err := kg.Offsetof("task_struct", "comm"); err != nil || off != commOff {
		t.Errorf("genuine guest: offsetof(task_struct, comm) = %d, %v; want %d from its own BTF", off, err, commOff)
	}
	if !strings.Contains(kg.TypesFrom, "differs from it and is not used") {
		t.Errorf("TypesFrom %q", kg.TypesFrom)
	}
	if _, err := kg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestProfileEvidenceAcrossBoots: the evidence leaves out only what KASLR
// relocates, so three boots of one kernel (4-level, 5-level and highmem
// guests, each with its own slide) share one cache entry.
func TestProfileEvidenceAcrossBoots(t *testing.T) {
	cache := unpack.Options{CacheDir: t.TempDir()}
	var slides []int64
	for i, variant := range []string{"x86_64-4level", "x86_64-5level", "x86_64-highmem"} {
		tg, _, _ := openImage(t, variant, "mem.elf.zst")
		k, err := Open(tg, Options{Unpack: cache})
		if err != nil {
			t.Fatal(err)
		}
		if fromCache := strings.HasPrefix(k.SymbolsFrom, "profile cache"); fromCache != (i > 0) {
			t.Errorf("%s: symbols from %s (notes %q)", variant, k.SymbolsFrom, k.Describe().Notes)
		}
		if _, err := k.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", variant, err)
		}
		slides = append(slides, k.Layout.KASLRVirtual)
		t.Logf("%s: KASLR %#x, symbols from %s", variant, k.Layout.KASLRVirtual, k.SymbolsFrom)
	}
	if slides[0] == slides[1] && slides[1] == slides[2] {
		t.Errorf("the three guests share one KASLR slide %#x: the test shows nothing", slides[0])
	}
	if e := cacheEntries(t, cache); len(e) != 1 {
		t.Errorf("cache entries %v, want one", e)
	}
}

// TestProfileCachePermissions: cache entries are private (0700 folders,
// 0600 files, also when an older version left the profiles folder 0755),
// and an entry that others could write is not trusted.
func TestProfileCachePermissions(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	cache := unpack.Options{CacheDir: t.TempDir()}
	root := filepath.Join(cache.CacheDir, "profiles")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tg, Options{Unpack: cache}); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | os.ModeDir
		} else {
			files++
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 { // meta.json, kallsyms, kallsyms.tables, vmlinux.btf
		t.Errorf("%d files in the cache", files)
	}
	metas := cacheEntries(t, cache)
	if len(metas) != 1 {
		t.Fatalf("cache entries %v", metas)
	}
	if err := os.Chmod(filepath.Dir(metas[0]), 0o770); err != nil {
		t.Fatal(err)
	}
	k, err := Open(tg, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(k.SymbolsFrom, "profile cache") {
		t.Errorf("a group-writable entry was used: %s", k.SymbolsFrom)
	}
}

// TestPerCPUSymbolAcrossBoots: a profile cached from one boot answers a
// per-cpu symbol of another boot (other KASLR slide) with its offset, not
// offset + slide difference. Masking kallsyms_relative_base out of the
// evidence relies on it: a forged relative_base is then no worse than a
// KASLR slide.
func TestPerCPUSymbolAcrossBoots(t *testing.T) {
	cache := unpack.Options{CacheDir: t.TempDir()}
	for i, variant := range []string{"x86_64-4level", "x86_64-5level"} {
		tg, _, _ := openImage(t, variant, "mem.elf.zst")
		k, err := Open(tg, Options{Unpack: cache})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 && (k.Layout.SymbolShift == 0 || !strings.HasPrefix(k.SymbolsFrom, "profile cache")) {
			t.Fatalf("%s: shift %#x, symbols from %s: the test needs a cached profile of another boot", variant, k.Layout.SymbolShift, k.SymbolsFrom)
		}
		// Both guests' /proc/kallsyms: "000000000001fb80 A current_task".
		if a, err := k.Symbol("current_task"); err != nil || a != 0x1fb80 {
			t.Errorf("%s: current_task at %#x, %v; the guest says 0x1fb80", variant, a, err)
		}
	}
	// Likewise from System.map (link-time addresses, shifted by the slide;
	// "000000000001fb80 D current_task").
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	k, err := Open(tg, Options{SymbolsPath: "../../testdata/kernels/6.1.0-56-cloud-amd64/System.map.zst", Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := k.Symbol("current_task"); err != nil || a != 0x1fb80 || k.Layout.SymbolShift == 0 {
		t.Errorf("System.map: current_task at %#x, %v (shift %#x); the guest says 0x1fb80", a, err, k.Layout.SymbolShift)
	}
}
