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
	"time"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfmem"
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
}

// profileMeta records where a cached profile came from, for `xascript info`.
type profileMeta struct {
	Banner string `json:"banner"` // the banner that keys the entry
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
	DerivedIn   string `json:"derived_in"`
	FromCache   bool   `json:"-"`
	TextOnlyMsg string `json:"text_only,omitempty"`
}

// profileVersion changes whenever what is cached changes meaning.
const profileVersion = "profile-v1"

// profileFromMemory derives symbols and types from the kernel found in t,
// using (and filling) the on-disk profile cache unless noCache.
func profileFromMemory(t vmi.Target, opt Options) (*memProfile, error) {
	if !opt.NoProfileCache && !opt.Unpack.NoCache {
		// Cheapest first: with CPU state the page tables say where _text
		// is, and one read there recognises a cached kernel; without, probe
		// RAM at each cached kernel's banner congruence.
		if cpu := t.CPU(); cpu.Known {
			if r, err := regionFromPageTables(t, cpu); err == nil {
				if p, err := loadCachedProfile(t, opt.Unpack, r); err == nil {
					return p, nil
				}
			}
		}
		if p, err := probeCachedProfiles(t, opt.Unpack); err == nil {
			return p, nil
		}
	}
	var prof *memProfile
	err := FindKernel(t, func(r Region) error {
		if !opt.NoProfileCache && !opt.Unpack.NoCache {
			if p, err := loadCachedProfile(t, opt.Unpack, r); err == nil {
				prof = p
				return nil
			}
		}
		p, err := deriveProfile(t, r)
		if err != nil {
			return err
		}
		if !opt.Unpack.NoCache {
			if err := saveProfile(opt.Unpack, p); err != nil {
				p.meta.DerivedIn += " (not cached: " + err.Error() + ")"
			}
		}
		prof = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("derive a profile from memory: %w", err)
	}
	return prof, nil
}

// deriveProfile decodes the region's kallsyms tables and finds its BTF.
func deriveProfile(t vmi.Target, r Region) (*memProfile, error) {
	start := time.Now()
	if err := r.FindBanner(t); err != nil {
		return nil, err
	}
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
	p.meta = profileMeta{Banner: r.Banner, FromPageTables: r.FromPageTables, BannerOffset: r.BannerPA - r.Start,
		Region: r.How, Layout: res.Layout, Symbols: len(list)}
	if off, ok := res.Tables["kallsyms_names"]; ok {
		p.meta.KallsymsPA = fmt.Sprintf("%#x", r.Start+uint64(off))
	}
	if _, ok := p.syms.Lookup("linux_banner"); !ok {
		p.meta.TextOnlyMsg = "the kernel's own symbol table has text symbols only (built without CONFIG_KALLSYMS_ALL): " +
			"data symbols such as linux_banner and modules are missing; give --symbols System.map"
	}
	raw, off, err := btfmem.Find(img, int64(r.Size))
	if err != nil {
		p.btfErr = fmt.Errorf("no BTF in kernel memory: %w", err)
		p.meta.BTFError = p.btfErr.Error()
	} else {
		p.meta.BTFPA = fmt.Sprintf("%#x", r.Start+uint64(off))
		p.meta.BTFBytes = len(raw)
		p.btfRaw = raw // written to the cache by saveProfile
	}
	p.meta.DerivedIn = time.Since(start).Round(time.Millisecond).String()
	return p, nil
}

// profileKey names a kernel: the first banner found in its image plus how
// the image was found (a page-table region starts at _text, a scanned one
// at some banner, which may be another copy). Two builds with the same
// banner are the same build in practice; a wrong hit is caught when the
// profile is validated against memory (Locate), and then re-derived.
func profileKey(m profileMeta) string {
	kind := "scan"
	if m.FromPageTables {
		kind = "pagetables"
	}
	h := sha256.Sum256([]byte(profileVersion + "\x00" + kind + "\x00" + m.Banner))
	return hex.EncodeToString(h[:16])
}

func profilesDir(u unpack.Options) (string, error) {
	dir, err := unpack.CacheDir(u)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "profiles"), nil
}

// maxProfiles bounds how many cached profiles are checked against a
// page-table region.
const maxProfiles = 256

// loadCachedProfile finds the cached profile of the kernel in r. A region
// found from the page tables is matched by reading each cached banner at
// its offset from _text: one small read instead of a scan of the image.
func loadCachedProfile(t vmi.Target, u unpack.Options, r Region) (*memProfile, error) {
	root, err := profilesDir(u)
	if err != nil {
		return nil, err
	}
	if !r.FromPageTables {
		return readProfile(u, filepath.Join(root, profileKey(profileMeta{Banner: r.Banner})))
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
		m, err := readMeta(dir)
		if err != nil || !m.FromPageTables || m.BannerOffset >= r.Size || uint64(len(m.Banner)) > r.Size-m.BannerOffset {
			continue
		}
		buf := make([]byte, len(m.Banner))
		if t.ReadPhys(buf, r.Start+m.BannerOffset) == nil && string(buf) == m.Banner {
			return readProfile(u, dir)
		}
	}
	return nil, errors.New("profile cache: no entry for this kernel")
}

func readMeta(dir string) (profileMeta, error) {
	var m profileMeta
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(raw, &m)
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
	dir := filepath.Join(root, profileKey(p.meta))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var lines strings.Builder
	p.syms.Each(func(s symbols.Symbol) bool {
		fmt.Fprintf(&lines, "%016x %c %s\n", s.Addr, s.Type, s.Name)
		return true
	})
	if err := os.WriteFile(filepath.Join(tmp, "kallsyms"), []byte(lines.String()), 0o644); err != nil {
		return err
	}
	if p.btfRaw != nil {
		if err := os.WriteFile(filepath.Join(tmp, "vmlinux.btf"), p.btfRaw, 0o644); err != nil {
			return err
		}
	}
	meta, err := json.MarshalIndent(p.meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), meta, 0o644); err != nil {
		return err
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
func probeCachedProfiles(t vmi.Target, u unpack.Options) (*memProfile, error) {
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
		m, err := readMeta(dir)
		if err != nil || m.LinuxBanner == "" || len(m.LinuxBanner) > maxBannerLen {
			continue
		}
		if probeBanner(t, m.BannerVA%kernelAlign, m.LinuxBanner) {
			return readProfile(u, dir)
		}
	}
	return nil, errors.New("profile cache: no cached kernel found in memory")
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

// rememberBanner records where linux_banner is, once a freshly derived
// profile has located the kernel (see profileMeta.LinuxBanner).
func rememberBanner(p *memProfile, banner string, va uint64) {
	if p.dir == "" || p.meta.FromCache || banner == "" {
		return
	}
	p.meta.LinuxBanner, p.meta.BannerVA = banner, va
	raw, err := json.MarshalIndent(p.meta, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(p.dir, ".meta.json.tmp")
	if os.WriteFile(tmp, raw, 0o644) == nil {
		os.Rename(tmp, filepath.Join(p.dir, "meta.json"))
	}
}
