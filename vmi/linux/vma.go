package linux

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/maple"
)

// A process's memory mappings: the vm_area_structs of its mm, from the
// maple tree mm->mm_mt (Linux 6.1 and later) or, on older kernels, the
// list mm->mmap linked through vm_next.

const (
	// maxVMAs bounds the mappings read from one mm: vm.max_map_count
	// defaults to 65,530 and few systems raise it past a million.
	maxVMAs = 1 << 20
	// maxPathDepth bounds the dentries of one file's path (PATH_MAX is
	// 4096: at most 2048 components of one letter and a slash).
	maxPathDepth = 2048
	nameMax      = 255 // NAME_MAX
)

// vmaLayout holds the offsets that reading VMAs needs.
type vmaLayout struct {
	start, end, flags, pgoff, file, mm uint64
	hasMM                              bool
	fileDentry, dName, dParent         uint64
}

func (k *Kernel) vmaLayout() (vmaLayout, error) {
	var l vmaLayout
	off, err := k.offsets("vm_area_struct", "vm_start", "vm_end", "vm_flags", "vm_pgoff", "vm_file")
	if err != nil {
		return l, err
	}
	l.start, l.end, l.flags, l.pgoff, l.file = off[0], off[1], off[2], off[3], off[4]
	if l.mm, err = k.Offsetof("vm_area_struct", "vm_mm"); err == nil {
		l.hasMM = true
	}
	if l.fileDentry, err = k.Offsetof("file", "f_path.dentry"); err != nil {
		return l, err
	}
	if off, err = k.offsets("dentry", "d_name.name", "d_parent"); err != nil {
		return l, err
	}
	l.dName, l.dParent = off[0], off[1]
	return l, nil
}

// VMAs lists the process's memory mappings in ascending order. The file of
// a mapping is named by its dentries up to the root of the file system it
// is on (d_name up the d_parent chain); a file on a file system mounted
// elsewhere than / is named from that file system's root, without the path
// of its mount point.
func (p *Process) VMAs() ([]vmi.VMA, error) {
	k := p.k
	what := fmt.Sprintf("VMAs of pid %d (%s, mm %#x)", p.info.PID, p.info.Comm, p.info.MM)
	l, err := k.vmaLayout()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var vmas []vmi.VMA
	add := func(vma uint64) error {
		if len(vmas) >= maxVMAs {
			return fmt.Errorf("more than %d mappings: %w", maxVMAs, vmi.ErrLimit)
		}
		v, err := k.readVMA(l, vma, p.info.MM)
		if err != nil {
			return err
		}
		if n := len(vmas); n > 0 && v.Start < vmas[n-1].End {
			return fmt.Errorf("VMA %#x at %#x-%#x overlaps or precedes the one before it (%#x-%#x): %w",
				vma, v.Start, v.End, vmas[n-1].Start, vmas[n-1].End, vmi.ErrFormat)
		}
		vmas = append(vmas, v)
		return nil
	}
	if mt, err := k.Offsetof("mm_struct", "mm_mt.ma_root"); err == nil {
		root, err := k.readPtr(p.info.MM + mt)
		if err != nil {
			return nil, fmt.Errorf("%s: read mm_mt.ma_root: %w", what, err)
		}
		err = maple.Walk(k.Space, root, maple.Options{PointerSize: k.PointerSize(), MaxEntries: maxVMAs},
			func(e maple.Entry) error {
				if err := add(e.Value); err != nil {
					return err
				}
				// The tree stores each VMA at [vm_start, vm_end - 1].
				if v := vmas[len(vmas)-1]; v.Start != e.First || v.End-1 != e.Last {
					return fmt.Errorf("the maple tree holds VMA %#x at %#x-%#x, but it says %#x-%#x: %w",
						e.Value, e.First, e.Last+1, v.Start, v.End, vmi.ErrFormat)
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return vmas, nil
	} else if !errors.Is(err, vmi.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// Before 6.1: the list mm->mmap, through vm_next, NULL-terminated.
	mmapOff, err := k.Offsetof("mm_struct", "mmap")
	if err != nil {
		return nil, fmt.Errorf("%s: the kernel's mm_struct has neither mm_mt nor mmap: %w", what, err)
	}
	nextOff, err := k.Offsetof("vm_area_struct", "vm_next")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	seen := map[uint64]bool{}
	vma, err := k.readPtr(p.info.MM + mmapOff)
	for ; err == nil && vma != 0; vma, err = k.readPtr(vma + nextOff) {
		if seen[vma] {
			return nil, fmt.Errorf("%s: the mmap list reaches VMA %#x twice: %w", what, vma, vmi.ErrFormat)
		}
		seen[vma] = true
		if err := add(vma); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read the mmap list: %w", what, err)
	}
	return vmas, nil
}

// readVMA reads one vm_area_struct, checking that it belongs to mm.
func (k *Kernel) readVMA(l vmaLayout, vma, mm uint64) (vmi.VMA, error) {
	var v vmi.VMA
	var err error
	read := func(off uint64, dst *uint64, name string) {
		if err == nil {
			if *dst, err = k.readPtr(vma + off); err != nil {
				err = fmt.Errorf("read VMA %#x %s: %w", vma, name, err)
			}
		}
	}
	var file, owner uint64
	read(l.start, &v.Start, "vm_start")
	read(l.end, &v.End, "vm_end")
	read(l.flags, &v.Flags, "vm_flags")
	read(l.pgoff, &v.PgOff, "vm_pgoff")
	read(l.file, &file, "vm_file")
	if l.hasMM {
		read(l.mm, &owner, "vm_mm")
	}
	if err != nil {
		return v, err
	}
	if v.Start >= v.End || v.Start&0xfff != 0 || v.End&0xfff != 0 {
		return v, fmt.Errorf("VMA %#x spans %#x-%#x, not a range of pages: %w", vma, v.Start, v.End, vmi.ErrFormat)
	}
	if l.hasMM && owner != mm {
		return v, fmt.Errorf("VMA %#x belongs to mm %#x, not %#x: %w", vma, owner, mm, vmi.ErrFormat)
	}
	v.FileAddr = file
	if file != 0 {
		if v.File, err = k.filePath(l, file); err != nil {
			v.FileErr = err.Error()
		}
	}
	return v, nil
}

// filePath names a struct file by the names of its dentries, from the
// file up to the root of its file system (a dentry that is its own
// parent). Bounded in depth and in each name's length.
func (k *Kernel) filePath(l vmaLayout, file uint64) (string, error) {
	d, err := k.readPtr(file + l.fileDentry)
	if err != nil {
		return "", fmt.Errorf("read file %#x f_path.dentry: %w", file, err)
	}
	var names []string
	for range maxPathDepth {
		if d == 0 {
			return "", fmt.Errorf("file %#x: a NULL dentry on its path: %w", file, vmi.ErrFormat)
		}
		parent, err := k.readPtr(d + l.dParent)
		if err != nil {
			return "", fmt.Errorf("read dentry %#x d_parent: %w", d, err)
		}
		if parent == d {
			slices.Reverse(names)
			return "/" + strings.Join(names, "/"), nil
		}
		namePtr, err := k.readPtr(d + l.dName)
		if err != nil {
			return "", fmt.Errorf("read dentry %#x d_name: %w", d, err)
		}
		name, err := k.kernelCString(namePtr, nameMax+1)
		if err != nil {
			return "", fmt.Errorf("read dentry %#x name: %w", d, err)
		}
		names = append(names, name)
		d = parent
	}
	return "", fmt.Errorf("file %#x: more than %d dentries up to the root: %w", file, maxPathDepth, vmi.ErrLimit)
}

// kernelCString reads a NUL-terminated string of at most max bytes,
// page by page so that a short string at the end of a page does not read
// the next.
func (k *Kernel) kernelCString(va uint64, max int) (string, error) {
	var out []byte
	for len(out) < max {
		at := va + uint64(len(out))
		n := min(max-len(out), int(0x1000-at&0xfff))
		buf := make([]byte, n)
		if err := k.Space.Read(buf, at); err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf...)
	}
	return string(out), nil
}
