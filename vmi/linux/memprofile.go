package linux

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfmem"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/kallsyms"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// memProfile is a profile derived from the guest's own memory: its
// kallsyms tables and, when the kernel has one, its BTF.
type memProfile struct {
	syms    *symbols.Table
	btfPath string // raw BTF blob in the profile cache, "" when none
	btfErr  error  // why there is no BTF
	btfRaw  []byte // the BTF when it was not (yet) written to the cache
	meta    profileMeta
	dir     string // cache entry

	// Evidence of a derived profile (memprofile_evidence.go): the masked
	// kallsyms span and where it and the BTF were found, turned into
	// offsets from _text once the kernel is located.
	tablesRaw                    []byte
	tablesPA                     uint64
	tablesMaskOff, tablesMaskLen uint64
	btfPA                        uint64
}

// profileMeta records where a cached profile came from, for `xascript info`.
type profileMeta struct {
	Version string `json:"version"` // profileVersion; other entries are ignored
	Banner  string `json:"banner"`  // the banner that keys the entry
	// BuildID is the kernel's build id from its VMCOREINFO ("" when it
	// has none): part of the key, and checked against the guest's before
	// the entry is used.
	BuildID string `json:"build_id,omitempty"`
	// FromPageTables entries are found again by reading Banner at
	// BannerOffset from the region's start (_text), without a scan.
	FromPageTables bool   `json:"from_page_tables"`
	BannerOffset   uint64 `json:"banner_offset"`
	Region         string `json:"region"`
	// LinuxBanner is linux_banner's text and BannerVA its address, known
	// once the profile has located the kernel: a later run finds this
	// kernel by probing RAM at BannerVA's 2 MiB congruence (a few dozen
	// reads) instead of scanning it.
	LinuxBanner string `json:"linux_banner,omitempty"`
	BannerVA    uint64 `json:"linux_banner_va,omitempty"`
	Layout      string `json:"kallsyms_layout"`
	Symbols     int    `json:"symbols"`
	KallsymsPA  string `json:"kallsyms_names_pa,omitempty"`
	BTFPA       string `json:"btf_pa,omitempty"`
	BTFBytes    int    `json:"btf_bytes,omitempty"`
	BTFError    string `json:"btf_error,omitempty"`
	BTFChecked  int    `json:"btf_members_checked_with_cilium,omitempty"`
	DerivedIn   string `json:"derived_in"`
	FromCache   bool   `json:"-"`
	// TextOnly: the kernel's kallsyms has text symbols only (built
	// without CONFIG_KALLSYMS_ALL); VMCOREINFO names some data symbols.
	TextOnly bool `json:"text_symbols_only,omitempty"`
	// VmcoreinfoPA is where VMCOREINFO was found for a TextOnly kernel,
	// whose symbols do not name vmcoreinfo_data: a later run reads it
	// there first instead of scanning RAM.
	VmcoreinfoPA uint64 `json:"vmcoreinfo_pa,omitempty"`
	// KallsymsEvidence and BTFEvidence bind the entry to the bytes it was
	// derived from: an entry is used only for a guest that holds the same
	// bytes at the same place (memprofile_evidence.go).
	KallsymsEvidence *evidence `json:"kallsyms_evidence"`
	BTFEvidence      *evidence `json:"btf_evidence,omitempty"`
}

// profileVersion changes whenever what is cached changes meaning.
// v4: entries carry evidence (v2 and v3 entries, trusted on banner and build
// id alone, are ignored), and BTF errors are kept in their short form.
const profileVersion = "profile-v4"

// profileFromMemory derives symbols and types from the kernel found in t,
// or takes them from the on-disk profile cache (unless told not to),
// passing over the entries in skip. A derived profile is not yet cached:
// Open saves it once it has located the kernel and read its build id.
func profileFromMemory(t vmi.Target, opt Options, skip map[string]bool) (*memProfile, error) {
	useCache := !opt.NoProfileCache && !opt.Unpack.NoCache
	if useCache {
		// Cheapest first: with CPU state the page tables say where _text
		// is, and one read there recognises a cached kernel; without, probe
		// RAM at each cached kernel's banner congruence.
		if cpu := t.CPU(); cpu.Known {
			if r, err := regionFromPageTables(t, cpu); err == nil {
				if p, err := loadCachedProfile(t, opt.Unpack, r, skip); err == nil {
					return p, nil
				}
			}
		}
		if p, err := probeCachedProfiles(t, opt.Unpack, skip); err == nil {
			return p, nil
		}
	}
	var prof *memProfile
	tried := 0
	// Deriving reads the kernel's tables and BTF out of memory, and on a
	// target without CPU state scans all of RAM for the kernel first.
	step := progress.Step{Name: "kernel", Doing: "locating the kernel", Done: "profile derived from memory", Unit: progress.Phases}
	if !opt.Unpack.NoCache { // finishProfile caches it
		step.Note = " (later runs use the profile cache)"
	}
	bar := opt.Unpack.Progress.Start(step)
	err := findKernel(t, opt.Unpack.Progress, func(r Region) error {
		tried++
		if useCache {
			if p, err := loadCachedProfile(t, opt.Unpack, r, skip); err == nil {
				prof = p
				return nil
			}
		}
		p, err := deriveProfile(t, r, bar)
		if err != nil {
			bar.Phase("locating the kernel")
			return err
		}
		prof = p
		return nil
	})
	bar.Done(err)
	if err != nil && tried > 0 {
		// Kernel images were found, but none had symbol tables that
		// decode: say that, and keep why each was rejected as details.
		return nil, vmi.Detailed(vmi.Details(err), err,
			"no kernel symbols found in memory (kallsyms tables corrupt or absent in %d candidate kernel images)", tried)
	}
	if err != nil {
		return nil, fmt.Errorf("derive a profile from memory: %w", err)
	}
	return prof, nil
}

// maxOpenAttempts bounds the cached profiles Open tries before deriving one.
const maxOpenAttempts = 4

// openFromMemory takes the profile from the kernel's own memory: from the
// profile cache when an entry for this kernel is there and its build id is
// the guest's, else derived (and then cached).
func (k *Kernel) openFromMemory(opt Options) (*Kernel, error) {
	wantTypes := opt.BTFPath == "" && opt.DWARFPath == ""
	skip := map[string]bool{}
	for attempt := 0; ; attempt++ {
		if attempt >= maxOpenAttempts {
			opt.NoProfileCache = true
		}
		prof, err := profileFromMemory(k.Target, opt, skip)
		if err != nil {
			return nil, fmt.Errorf("%w; give --symbols and --btf", err)
		}
		k.useSymbols(prof)
		if err := k.locate(); err != nil {
			if !prof.meta.FromCache {
				return nil, err
			}
			// A cached profile that does not fit this memory: derive afresh.
			dropCachedProfile(prof)
			opt.NoProfileCache = true
			continue
		}
		id, where := k.guestBuildID()
		if prof.meta.FromCache && id != prof.meta.BuildID {
			// Same banner, another build: never reuse a profile across kernels.
			k.notes = append(k.notes, fmt.Sprintf("profile cache %s is for build id %s, the guest's (%s) is %s: not used",
				prof.dir, orNone(prof.meta.BuildID), where, orNone(id)))
			skip[prof.dir] = true
			continue
		}
		if prof.meta.FromCache {
			// The banner and build id are the guest's to forge: use the
			// entry only if this guest holds the tables it came from.
			if err := k.checkKallsymsEvidence(prof); err != nil {
				k.notes = append(k.notes, fmt.Sprintf("profile cache %s: %v: not used", prof.dir, err))
				skip[prof.dir] = true
				continue
			}
		}
		k.finishProfile(prof, opt)
		k.useTypes(prof, wantTypes)
		if prof.meta.FromCache && prof.btfPath != "" && k.btfPath == prof.btfPath {
			e := prof.meta.BTFEvidence
			if e == nil {
				k.btfPath, k.TypesFrom = "", ""
				k.noTypes = fmt.Errorf("profile cache %s has BTF but no BTF evidence; run with the profile cache off", prof.dir)
			} else {
				k.cachedBTF = &cachedBTFCheck{pa: k.Layout.TextPhys + e.Off, len: e.Len, note: prof.dir}
			}
		}
		return k, nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// finishProfile records what locating the kernel taught (its build id,
// where its banner and VMCOREINFO are) in a derived profile and caches it,
// or updates a cached entry whose VMCOREINFO moved.
func (k *Kernel) finishProfile(p *memProfile, opt Options) {
	m := &p.meta
	f, _ := k.Vmcoreinfo()
	if m.FromCache {
		if m.TextOnly && f != nil && f.VA == 0 && f.PA != m.VmcoreinfoPA {
			m.VmcoreinfoPA = f.PA
			writeMeta(p)
		}
		return
	}
	if f != nil {
		m.BuildID = f.Info.BuildID
		if m.TextOnly && f.VA == 0 {
			m.VmcoreinfoPA = f.PA
		}
	}
	if va, ok := k.Syms.Lookup("linux_banner"); ok {
		m.LinuxBanner, m.BannerVA = k.Layout.Banner, va
	} else if k.bannerVA != 0 {
		m.LinuxBanner, m.BannerVA = k.Layout.Banner, k.bannerVA
	}
	if len(m.LinuxBanner) > maxBannerLen {
		m.LinuxBanner, m.BannerVA = "", 0
	}
	if opt.Unpack.NoCache {
		return
	}
	if err := p.setEvidence(k.Layout.TextPhys); err != nil {
		m.DerivedIn += " (not cached: " + err.Error() + ")"
		return
	}
	if err := saveProfile(opt.Unpack, p); err != nil {
		m.DerivedIn += " (not cached: " + err.Error() + ")"
	}
}

// deriveProfile decodes the region's kallsyms tables and finds its BTF.
func deriveProfile(t vmi.Target, r Region, bar *progress.Bar) (*memProfile, error) {
	start := time.Now()
	if err := r.FindBanner(t); err != nil {
		return nil, err
	}
	bar.Phase("decoding kallsyms")
	img := PhysReaderAt{Phys: t, Base: r.Start, Size: r.Size}
	res, err := kallsyms.Find(img, int64(r.Size), kallsyms.Options{Hint: int64(r.BannerPA - r.Start)})
	if err != nil {
		return nil, fmt.Errorf("kallsyms tables near %s: %w", r.How, err)
	}
	list := make([]symbols.Symbol, len(res.Symbols))
	for i, s := range res.Symbols {
		list[i] = symbols.Symbol{Addr: s.Addr, Type: s.Type, Name: s.Name}
	}
	p := &memProfile{syms: symbols.FromList("kallsyms tables in memory", list)}
	p.meta = profileMeta{Version: profileVersion, Banner: r.Banner, FromPageTables: r.FromPageTables,
		BannerOffset: r.BannerPA - r.Start, Region: r.How, Layout: res.Layout, Symbols: len(list)}
	if off, ok := res.Tables["kallsyms_names"]; ok {
		p.meta.KallsymsPA = fmt.Sprintf("%#x", r.Start+uint64(off))
	}
	// The evidence for the cache: the tables' bytes as found here. A
	// profile without them is used, but not cached.
	if lo, hi, mo, ml, err := kallsymsSpan(img, res); err == nil {
		if raw, err := readMasked(t, r.Start+lo, hi-lo, mo, ml); err == nil {
			p.tablesRaw, p.tablesPA, p.tablesMaskOff, p.tablesMaskLen = raw, r.Start+lo, mo, ml
		}
	}
	p.meta.TextOnly = textSymbolsOnly(p.syms)
	bar.Phase("finding BTF")
	raw, off, err := btfmem.Find(img, int64(r.Size))
	if errors.Is(err, vmi.ErrNotFound) {
		p.btfErr = err // says "no BTF in ... kernel memory" and why
		p.meta.BTFError = p.btfErr.Error()
	} else if err != nil {
		p.btfErr = fmt.Errorf("no BTF in kernel memory: %w", err)
		p.meta.BTFError = p.btfErr.Error()
	} else if n, err := checkBTF(raw, bar); err != nil {
		p.btfErr = fmt.Errorf("BTF in memory at physical %#x: %w", r.Start+uint64(off), err)
		p.meta.BTFError = p.btfErr.Error()
	} else {
		p.meta.BTFPA = fmt.Sprintf("%#x", r.Start+uint64(off))
		p.meta.BTFBytes = len(raw)
		p.meta.BTFChecked = n
		p.btfRaw = raw // written to the cache by saveProfile
		p.btfPA = r.Start + uint64(off)
	}
	p.meta.DerivedIn = time.Since(start).Round(time.Millisecond).String()
	return p, nil
}

// profileKey names a kernel: the first banner found in its image, its
// build id, how the image was found (a page-table region starts at
// _text, a scanned one at some banner, which may be another copy), and the
// SHA-256 of the kallsyms tables and BTF it was derived from. An entry
// is looked up by banner (the build id is only known once the kernel is
// located) and used only if its build id is the guest's and the guest
// holds the same tables (checkKallsymsEvidence, loadBTFFile); a wrong hit
// is also caught when the profile is validated against memory (Locate).
// The hashes keep two guests that share a banner but not their tables
// from overwriting each other's entry.
func profileKey(m profileMeta) string {
	kind := "scan"
	if m.FromPageTables {
		kind = "pagetables"
	}
	var ks, bs string
	if e := m.KallsymsEvidence; e != nil {
		ks = e.SHA256
	}
	if e := m.BTFEvidence; e != nil {
		bs = e.SHA256
	}
	h := sha256.Sum256([]byte(profileVersion + "\x00" + kind + "\x00" + m.Banner + "\x00" + m.BuildID + "\x00" + ks + "\x00" + bs))
	return hex.EncodeToString(h[:16])
}

func profilesDir(u unpack.Options) (string, error) {
	dir, err := unpack.CacheDir(u)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "profiles"), nil
}

// privateEntry reports whether a cache entry is a directory of ours that
// no one else can write (0700 as saveProfile makes it): an entry another
// local user could have planted is not read.
func privateEntry(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("profile cache %s: mode %v, want a 0700 directory", dir, st.Mode())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("profile cache %s: owned by uid %d, not %d", dir, sys.Uid, os.Getuid())
	}
	return nil
}

// maxProfiles bounds how many cached profiles are checked against a
// page-table region.
const maxProfiles = 256

// loadCachedProfile finds a cached profile of the kernel in r, passing over
// the entries in skip. A region found from the page tables is matched by
// reading each cached banner at its offset from _text: one small read
// instead of a scan of the image; a scanned region by its banner.
func loadCachedProfile(t vmi.Target, u unpack.Options, r Region, skip map[string]bool) (*memProfile, error) {
	p, err := findCachedProfile(u, skip, func(m profileMeta) bool {
		if m.FromPageTables != r.FromPageTables {
			return false
		}
		if !r.FromPageTables {
			return m.Banner == r.Banner
		}
		if m.BannerOffset >= r.Size || uint64(len(m.Banner)) > r.Size-m.BannerOffset {
			return false
		}
		buf := make([]byte, len(m.Banner))
		return t.ReadPhys(buf, r.Start+m.BannerOffset) == nil && string(buf) == m.Banner
	})
	if p == nil && err == nil {
		err = errors.New("profile cache: no entry for this kernel")
	}
	return p, err
}

// findCachedProfile reads the first cached profile whose meta.json match
// accepts, looking at no more than maxProfiles entries and passing over
// those in skip. It returns nil, nil when none matches.
func findCachedProfile(u unpack.Options, skip map[string]bool, match func(profileMeta) bool) (*memProfile, error) {
	root, err := profilesDir(u)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if i >= maxProfiles {
			break
		}
		dir := filepath.Join(root, e.Name())
		if skip[dir] || privateEntry(dir) != nil {
			continue
		}
		if m, err := readMeta(dir); err == nil && match(m) {
			return readProfile(u, dir)
		}
	}
	return nil, nil
}

// readMeta reads an entry's meta.json; entries of another profileVersion
// are errors.
func readMeta(dir string) (profileMeta, error) {
	var m profileMeta
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, err
	}
	if m.Version != profileVersion {
		return m, fmt.Errorf("profile cache %s: version %q, not %q", dir, m.Version, profileVersion)
	}
	if m.KallsymsEvidence == nil || (m.BTFError == "" && m.BTFEvidence == nil) {
		return m, fmt.Errorf("profile cache %s: no evidence", dir)
	}
	return m, nil
}

func readProfile(u unpack.Options, dir string) (*memProfile, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	p := &memProfile{dir: dir, meta: m}
	if p.syms, err = symbols.Load(filepath.Join(dir, "kallsyms"), u); err != nil {
		return nil, err
	}
	if m.BTFError != "" {
		p.btfErr = errors.New(m.BTFError)
	} else {
		p.btfPath = filepath.Join(dir, "vmlinux.btf")
	}
	p.meta.FromCache = true
	return p, nil
}

// saveProfile writes the entry into a temporary folder and renames it into
// place, so readers never see half an entry.
func saveProfile(u unpack.Options, p *memProfile) error {
	root, err := profilesDir(u)
	if err != nil {
		return err
	}
	if p.meta.KallsymsEvidence == nil || (p.btfRaw != nil && p.meta.BTFEvidence == nil) {
		return errors.New("no evidence to bind the profile to")
	}
	dir := filepath.Join(root, profileKey(p.meta))
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	// MkdirAll leaves an existing folder as it is: an older xascript made
	// it 0755.
	if err := os.Chmod(root, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".tmp-") // 0700
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var lines strings.Builder
	p.syms.Each(func(s symbols.Symbol) bool {
		fmt.Fprintf(&lines, "%016x %c %s\n", s.Addr, s.Type, s.Name)
		return true
	})
	if err := os.WriteFile(filepath.Join(tmp, "kallsyms"), []byte(lines.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, kallsymsTables), p.tablesRaw, 0o600); err != nil {
		return err
	}
	if p.btfRaw != nil {
		if err := os.WriteFile(filepath.Join(tmp, "vmlinux.btf"), p.btfRaw, 0o600); err != nil {
			return err
		}
	}
	p.meta.Version = profileVersion
	meta, err := json.MarshalIndent(p.meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), meta, 0o600); err != nil {
		return err
	}
	if existing, err := readMeta(dir); err == nil && privateEntry(dir) == nil && existing.sameEvidence(p.meta) {
		// Another xascript (or another guest of this run with the same
		// kernel) cached it meanwhile: leave that entry in place, since
		// its kernel may be reading it.
		p.dir = dir
		if p.btfRaw != nil {
			p.btfPath = filepath.Join(dir, "vmlinux.btf")
		}
		return nil
	}
	os.RemoveAll(dir) // a stale entry that failed validation
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	p.dir = dir
	if p.btfRaw != nil {
		p.btfPath = filepath.Join(dir, "vmlinux.btf")
	}
	return nil
}

// dropCachedProfile removes an entry that did not validate.
func dropCachedProfile(p *memProfile) {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// probeCachedProfiles looks for a cached kernel whose linux_banner sits in
// RAM at its 2 MiB congruence, as it does wherever KASLR put the kernel.
func probeCachedProfiles(t vmi.Target, u unpack.Options, skip map[string]bool) (*memProfile, error) {
	p, err := findCachedProfile(u, skip, func(m profileMeta) bool {
		return m.LinuxBanner != "" && len(m.LinuxBanner) <= maxBannerLen &&
			probeBanner(t, m.BannerVA%kernelAlign, m.LinuxBanner)
	})
	if p == nil && err == nil {
		err = errors.New("profile cache: no cached kernel found in memory")
	}
	return p, err
}

// probeBanner reports whether banner sits at offset off of some 2 MiB chunk
// of RAM.
func probeBanner(t vmi.Target, off uint64, banner string) bool {
	buf := make([]byte, len(banner))
	chunks := 0
	for _, r := range t.MemoryMap() {
		for base := r.Start - r.Start%kernelAlign; base < r.End; base += kernelAlign {
			if chunks++; chunks > maxScannedChunks {
				return false
			}
			pa := base + off
			if pa >= r.Start && pa+uint64(len(buf)) <= r.End && t.ReadPhys(buf, pa) == nil && string(buf) == banner {
				return true
			}
			if base+kernelAlign < base {
				break
			}
		}
	}
	return false
}

// writeMeta rewrites a cached entry's meta.json in place (atomically).
func writeMeta(p *memProfile) {
	if p.dir == "" {
		return
	}
	raw, err := json.MarshalIndent(p.meta, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(p.dir, ".meta.json.tmp")
	if os.WriteFile(tmp, raw, 0o600) == nil {
		os.Rename(tmp, filepath.Join(p.dir, "meta.json"))
	}
}

// textSymbolsOnly tells a kernel built without CONFIG_KALLSYMS_ALL: its
// table lacks linux_banner and has next to no data symbols (nm types d, b,
// r and friends; the 686-pae kernel's has one, __init_begin, in 47,000).
func textSymbolsOnly(syms *symbols.Table) bool {
	if _, ok := syms.Lookup("linux_banner"); ok {
		return false
	}
	data := 0
	syms.Each(func(s symbols.Symbol) bool {
		switch s.Type | 0x20 { // lower case
		case 'd', 'b', 'r', 'g', 's', 'v':
			data++
		}
		return true
	})
	return data*100 < syms.Len()
}

// checkBTF is crossCheckBTF as a phase of bar.
func checkBTF(raw []byte, bar *progress.Bar) (int, error) {
	bar.Phase("checking BTF")
	return crossCheckBTF(raw)
}

// crossCheckBTF decodes BTF found in guest memory with cilium/ebpf as well
// as with btfsrc, and refuses it unless both agree on the structs scripts
// read. It runs once per kernel (the checked blob is cached); it costs tens
// of milliseconds, within the budget of a cold profile.
func crossCheckBTF(raw []byte) (int, error) {
	ty, err := btfsrc.Parse(raw)
	if err != nil {
		return 0, err
	}
	defer ty.Close()
	return btfsrc.CrossCheck(ty, btfsrc.CheckedStructs)
}

// sameEvidence reports whether m and o bind the same kernel: the same
// banner, build id and evidence of its kallsyms tables and BTF.
func (m profileMeta) sameEvidence(o profileMeta) bool {
	same := func(a, b *evidence) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return m.Banner == o.Banner && m.BuildID == o.BuildID && m.FromPageTables == o.FromPageTables &&
		same(m.KallsymsEvidence, o.KallsymsEvidence) && same(m.BTFEvidence, o.BTFEvidence)
}
