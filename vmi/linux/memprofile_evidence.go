package linux

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/kallsyms"
)

// Evidence: what binds a cached profile to the guest at hand.
//
// The banner and build id that find a cache entry are written by the guest,
// so a tenant with root in one guest could forge its kallsyms tables or BTF
// in memory, have xascript derive and cache a profile from them, and see it
// trusted for every other guest with the same banner. A cached profile is
// therefore used only for a guest whose memory holds, at the same physical
// distance from _text, byte for byte the tables it was derived from:
//
//   - the kallsyms tables (every table kallsyms.Find located: one
//     contiguous span of .rodata, kallsyms_offsets ... kallsyms_token_index
//     and ~1.7 MB on Debian's 6.1) are compared on every
//     open, before the cached symbols are used. The one field KASLR
//     relocates, kallsyms_relative_base (_text's run-time address), is left
//     out: it moves every kernel symbol by the same amount, which locating
//     the kernel measures and checks anyway (per-cpu symbols do not depend
//     on it, and Kernel.Symbol does not shift them: a forged value is no
//     worse than a KASLR slide); everything else in the span is the
//     same on every boot of one kernel, so the cache still works across
//     boots (TestProfileEvidenceAcrossBoots).
//   - the BTF (~4 MB) is compared when the types are first used (Types),
//     against the cached blob that is mapped then anyway; a script that
//     reads no struct pays nothing. When it differs, this guest's own BTF
//     is decoded instead (cross-checked with cilium/ebpf, as a cold derive
//     does) and the cached copy is not used.
//
// Comparing bytes rather than hashing them is exact (nothing to forge, no
// sample to dodge) and much cheaper: on the 2-core test machine SHA-256 ran
// at ~600 MB/s (10 ms for the ~6 MB), while the comparison, in place on
// mapped guest memory (vmi.PageMapper) and a mapped cache file, runs at
// memory speed. BenchmarkProfileWarmOpen, CPU time per warm open on that
// (loaded) machine: 0.34-0.46 ms before evidence, 0.69-0.89 ms with the
// kallsyms check; with a first type lookup 0.44-0.60 ms before, 1.07-1.41
// ms with the BTF check too.
// Sampling would be cheaper still and is forgeable: a forger changes the
// bytes between samples. The SHA-256 of both is computed once, when the
// profile is derived, and is part of the cache key, so two guests with one
// banner and different tables get two entries instead of overwriting each
// other's.
//
// A kernel whose kallsyms tables hold absolute addresses (CONFIG_KALLSYMS_
// BASE_RELATIVE=n: kallsyms_addresses, relocated by KASLR) would differ on
// every boot: such a profile is then re-derived per boot, never trusted
// unchecked.

// evidence locates and fingerprints guest bytes a profile was derived from.
type evidence struct {
	Off uint64 `json:"off"` // physical distance from _text
	Len uint64 `json:"len"`
	// MaskOff/MaskLen: bytes of the span left out (zeroed before comparing
	// and hashing) because KASLR relocates them; MaskLen 0 for none.
	MaskOff uint64 `json:"mask_off,omitempty"`
	MaskLen uint64 `json:"mask_len,omitempty"`
	SHA256  string `json:"sha256"`
}

// Bounds on evidence read from the guest: the kallsyms span of the biggest
// kernels (allyesconfig: ~400k symbols, ~8 MiB of names) and BTF.
const (
	maxKallsymsSpan = 64 << 20
	maxEvidenceBTF  = 64 << 20
	kallsymsTables  = "kallsyms.tables" // the masked span, in a cache entry
)

// kallsymsSpan returns the image offsets [lo, hi) covering every table Find
// reported, and where kallsyms_relative_base lies in it (maskLen 0 when
// the layout has none). Tables of unknown length (names, token table) end
// where the next one starts; the last table always has a known length.
func kallsymsSpan(img PhysReaderAt, res *kallsyms.Result) (lo, hi, maskOff, maskLen uint64, err error) {
	ptr := int64(4)
	if res.Is64 {
		ptr = 8
	}
	numOff, ok := res.Tables["kallsyms_num_syms"]
	if !ok {
		return 0, 0, 0, 0, errors.New("kallsyms_num_syms not located")
	}
	var nb [4]byte
	if _, err := img.ReadAt(nb[:], numOff); err != nil {
		return 0, 0, 0, 0, err
	}
	n := int64(binary.LittleEndian.Uint32(nb[:]))
	if n <= 0 || n > 1<<22 {
		return 0, 0, 0, 0, fmt.Errorf("kallsyms_num_syms %d", n)
	}
	length := map[string]int64{
		"kallsyms_offsets":       4 * n,
		"kallsyms_addresses":     ptr * n,
		"kallsyms_relative_base": ptr,
		"kallsyms_num_syms":      ptr,
		"kallsyms_markers":       ptr * ((n + 255) / 256),
		"kallsyms_seqs_of_names": 3 * n,
		"kallsyms_token_index":   2 * 256,
	}
	first := true
	var l, h int64
	for name, off := range res.Tables {
		end := off + length[name]
		if first || off < l {
			l = off
		}
		if first || end > h {
			h = end
		}
		first = false
	}
	if first || h <= l || h-l > maxKallsymsSpan {
		return 0, 0, 0, 0, fmt.Errorf("kallsyms tables span [%#x, %#x)", l, h)
	}
	if rb, ok := res.Tables["kallsyms_relative_base"]; ok {
		maskOff, maskLen = uint64(rb-l), uint64(ptr)
	}
	return uint64(l), uint64(h), maskOff, maskLen, nil
}

// readMasked reads n bytes at physical pa and zeroes the masked ones.
func readMasked(t vmi.Target, pa, n, maskOff, maskLen uint64) ([]byte, error) {
	buf := make([]byte, n)
	if err := t.ReadPhys(buf, pa); err != nil {
		return nil, err
	}
	if maskLen > 0 && maskOff+maskLen <= n {
		clear(buf[maskOff : maskOff+maskLen])
	}
	return buf, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// setEvidence records, once the kernel is located, where a derived
// profile's tables lie relative to _text. It fails when they do not lie
// after _text (a profile from some other copy): such a profile is not
// cached.
func (p *memProfile) setEvidence(textPA uint64) error {
	if p.tablesRaw == nil || p.tablesPA < textPA {
		return fmt.Errorf("kallsyms tables at physical %#x are not in the kernel image at %#x", p.tablesPA, textPA)
	}
	p.meta.KallsymsEvidence = &evidence{Off: p.tablesPA - textPA, Len: uint64(len(p.tablesRaw)),
		MaskOff: p.tablesMaskOff, MaskLen: p.tablesMaskLen, SHA256: sha256Hex(p.tablesRaw)}
	if p.btfRaw != nil {
		if p.btfPA < textPA {
			return fmt.Errorf("BTF at physical %#x is not in the kernel image at %#x", p.btfPA, textPA)
		}
		p.meta.BTFEvidence = &evidence{Off: p.btfPA - textPA, Len: uint64(len(p.btfRaw)), SHA256: sha256Hex(p.btfRaw)}
	}
	return nil
}

// checkKallsymsEvidence compares the guest's kallsyms tables with the ones
// a cached profile was derived from.
func (k *Kernel) checkKallsymsEvidence(p *memProfile) error {
	e := p.meta.KallsymsEvidence
	if e == nil || e.Len == 0 || e.Len > maxKallsymsSpan {
		return errors.New("no kallsyms evidence")
	}
	want, unmap, err := mapFile(filepath.Join(p.dir, kallsymsTables))
	if err != nil {
		return err
	}
	defer unmap()
	if uint64(len(want)) != e.Len {
		return fmt.Errorf("%s has %d bytes, meta.json says %d", kallsymsTables, len(want), e.Len)
	}
	pa := k.Layout.TextPhys + e.Off
	if pa < e.Off || pa+e.Len < pa {
		return fmt.Errorf("kallsyms evidence at offset %#x overflows", e.Off)
	}
	same, err := equalGuest(k.Target, pa, want, e.MaskOff, e.MaskLen)
	if err != nil {
		return fmt.Errorf("kallsyms tables at physical %#x: %w", pa, err)
	}
	if !same {
		return fmt.Errorf("the kallsyms tables at physical %#x differ from the ones the profile was derived from", pa)
	}
	return nil
}

// mapFile maps a cache file read-only: reading 1.7 MB with read(2) on
// every open cost more than the comparison itself.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() <= 0 || st.Size() > maxKallsymsSpan {
		return nil, nil, fmt.Errorf("%s: %d bytes", path, st.Size())
	}
	// MAP_POPULATE: every page is compared, and one populating call costs
	// less than a fault per page.
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return data, func() { unix.Munmap(data) }, nil
}

// equalGuest compares the guest's bytes at pa with want, the maskLen bytes
// at maskOff excepted (want has zeros there). Targets that map guest
// memory are compared in place, a page at a time; others through ReadPhys.
func equalGuest(t vmi.Target, pa uint64, want []byte, maskOff, maskLen uint64) (bool, error) {
	pm, _ := t.(vmi.PageMapper)
	var buf [vmi.PageSize]byte
	n := uint64(len(want))
	for at := uint64(0); at < n; {
		cur := pa + at
		m := min(vmi.PageSize-cur%vmi.PageSize, n-at)
		masked := maskLen > 0 && at < maskOff+maskLen && maskOff < at+m
		var got []byte
		if pm != nil && !masked {
			if p := pm.PhysPage(cur); p != nil {
				off := cur % vmi.PageSize
				got = p[off : off+m]
			}
		}
		if got == nil {
			if err := t.ReadPhys(buf[:m], cur); err != nil {
				return false, err
			}
			got = buf[:m]
			for i := max(maskOff, at); masked && i < min(maskOff+maskLen, at+m); i++ {
				got[i-at] = 0
			}
		}
		if !bytes.Equal(got, want[at:at+m]) {
			return false, nil
		}
		at += m
	}
	return true, nil
}

// cachedBTFCheck is the BTF evidence of a cached profile, checked when the
// types are first loaded.
type cachedBTFCheck struct {
	pa   uint64
	len  uint64
	note string // where the evidence came from, for TypesFrom
}

// loadBTFFile loads the BTF at k.btfPath (a --btf file or a cached
// profile's blob). A cached blob is used only if this guest's BTF at the
// recorded place is byte for byte the same; if not, or if the entry is gone
// (another xascript dropped or replaced it since Open), the guest's own BTF
// is decoded and cross-checked instead.
func (k *Kernel) loadBTFFile() (typeSource, error) {
	t, err := btfsrc.Load(k.btfPath, k.unpackOpt)
	c := k.cachedBTF
	if c == nil {
		return loadTypes(t, err)
	}
	var want []byte
	why := "the profile cache's copy differs from it and is not used"
	if err != nil {
		why = fmt.Sprintf("the profile cache's copy could not be read: %v", err)
	} else {
		want = t.Raw()
	}
	same, raw, err := sameGuestBytes(k.Target, c.pa, c.len, want)
	if err != nil {
		if t != nil {
			t.Close()
		}
		return nil, fmt.Errorf("BTF evidence of profile cache %s: %w", c.note, err)
	}
	if same {
		return t, nil
	}
	if t != nil {
		t.Close()
	}
	if _, err := crossCheckBTF(raw); err != nil {
		return nil, fmt.Errorf("BTF in memory at physical %#x (%s): %w", c.pa, why, err)
	}
	own, err := btfsrc.Parse(raw)
	if err != nil {
		return nil, err
	}
	k.TypesFrom = fmt.Sprintf("BTF in memory (at physical %#x, %d bytes; %s)", c.pa, len(raw), why)
	return own, nil
}

// sameGuestBytes compares n guest bytes at pa with want, a chunk at a time.
// When they differ it returns the guest's bytes.
func sameGuestBytes(t vmi.Target, pa, n uint64, want []byte) (bool, []byte, error) {
	if n == 0 || n > maxEvidenceBTF {
		return false, nil, fmt.Errorf("BTF evidence of %d bytes", n)
	}
	if pa+n < pa {
		return false, nil, fmt.Errorf("BTF evidence at %#x overflows", pa)
	}
	if uint64(len(want)) == n {
		same, err := equalGuest(t, pa, want, 0, 0)
		if err != nil {
			return false, nil, fmt.Errorf("BTF at physical %#x: %w", pa, err)
		}
		if same {
			return true, nil, nil
		}
	}
	raw := make([]byte, n)
	if err := t.ReadPhys(raw, pa); err != nil {
		return false, nil, fmt.Errorf("BTF at physical %#x: %w", pa, err)
	}
	return false, raw, nil
}
