package qemu

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// procMem reads QEMU's own memory with process_vm_readv(2), the way to
// reach guest RAM that lives only in QEMU's process (anonymous memory from
// plain -m, memory-backend-ram, memfd, a share=off file). The kernel allows
// it to a process that may ptrace QEMU (same user and Yama permitting, or
// CAP_SYS_PTRACE); a read is one system call with no copy in between.
type procMem struct {
	pid    int
	local  [1]unix.Iovec
	remote [1]unix.RemoteIovec
}

// read fills buf from host virtual address hva in QEMU. The errors are the
// system call's errno values; classify turns them into messages.
func (p *procMem) read(buf []byte, hva uint64) error {
	return p.transfer(buf, hva, unix.ProcessVMReadv)
}

// write stores buf at host virtual address hva in QEMU.
func (p *procMem) write(buf []byte, hva uint64) error {
	return p.transfer(buf, hva, unix.ProcessVMWritev)
}

// transfer moves buf to or from hva with process_vm_readv or _writev.
func (p *procMem) transfer(buf []byte, hva uint64, op func(int, []unix.Iovec, []unix.RemoteIovec, uint) (int, error)) error {
	defer func() { p.local[0].Base = nil }() // do not pin the caller's buffer
	for len(buf) > 0 {
		p.local[0].Base = &buf[0]
		p.local[0].SetLen(len(buf))
		p.remote[0] = unix.RemoteIovec{Base: uintptr(hva), Len: len(buf)}
		n, err := op(p.pid, p.local[:], p.remote[:], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n <= 0:
			return unix.EFAULT // nothing moved: the next page is not mapped
		}
		// A short count stops at the first page that is not mapped; the
		// next call reports it.
		buf = buf[n:]
		hva += uint64(n)
	}
	return nil
}

// ptraceScopeFile is where Yama keeps kernel.yama.ptrace_scope; a variable
// for tests.
var ptraceScopeFile = "/proc/sys/kernel/yama/ptrace_scope"

// classifyProcErr turns an errno from reading QEMU's memory or its
// /proc/PID files into an error that says what happened and what to do.
// The errno stays wrapped (errors.Is(err, fs.ErrPermission) works); a QEMU
// that is gone wraps ErrGone.
func classifyProcErr(err error, pid int, hva uint64) error {
	switch {
	case errors.Is(err, unix.ESRCH), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("QEMU (pid %d) has exited: %w", pid, ErrGone)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("cannot read the memory of QEMU (pid %d): %w; %s", pid, err, permissionHint(pid))
	case errors.Is(err, unix.EFAULT):
		return fmt.Errorf("QEMU (pid %d) has no readable memory at host address %#x (guest RAM unplugged or remapped?): %w", pid, hva, err)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("reading QEMU's memory needs process_vm_readv, which this kernel lacks (or a seccomp filter forbids): %w", err)
	}
	return fmt.Errorf("reading the memory of QEMU (pid %d) at host address %#x: %w", pid, hva, err)
}

// permissionHint says who may read another process's memory. The kernel
// asks for ptrace access (PTRACE_MODE_ATTACH): the same user, with QEMU
// still dumpable, where Yama's ptrace_scope allows it; or CAP_SYS_PTRACE.
func permissionHint(pid int) string {
	hint := "run xascript as the user QEMU runs as, or as root (CAP_SYS_PTRACE)"
	if b, err := os.ReadFile(ptraceScopeFile); err == nil {
		switch scope := strings.TrimSpace(string(b)); scope {
		case "0":
		case "1":
			hint = "kernel.yama.ptrace_scope is 1, so only QEMU's ancestors may read it: run xascript as root " +
				"(or with CAP_SYS_PTRACE), or set the sysctl kernel.yama.ptrace_scope=0 and run as QEMU's user"
		case "2":
			hint = "kernel.yama.ptrace_scope is 2: only root (CAP_SYS_PTRACE) may read QEMU's memory; run xascript as root"
		default:
			hint = "kernel.yama.ptrace_scope is " + scope + ": no process may read another's memory until reboot; " +
				"give QEMU a shared memory-backend-file instead (-object memory-backend-file,...,share=on)"
		}
	}
	if st, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() && os.Geteuid() != 0 {
			hint += fmt.Sprintf(" (QEMU runs as uid %d, xascript as uid %d)", sys.Uid, os.Geteuid())
		}
	}
	return hint
}

// placeInProcess finds where each of regs lives in QEMU's address space
// and adds them to t as process-memory regions. The host address of a
// range comes from HMP gpa2hva (asked for both ends, so a range that is not
// contiguous in QEMU is caught); a QEMU without gpa2hva has its blocks
// placed by GuessBlockHVA. Every range is then checked against
// /proc/PID/maps, which also proves the socket's peer is the process that
// holds the guest's RAM, and one byte is read so that a permission problem
// fails Open rather than the first read.
func (t *Target) placeInProcess(regs []Region, files map[string]backend) error {
	if t.pid <= 0 {
		return fmt.Errorf("qemu %s: RAM block %q is not in a shared memory-backend-file, and QEMU's pid is unknown (the socket gave no peer credentials), so its process memory cannot be read either: %w",
			t.sock, regs[0].Name, vmi.ErrUnsupported)
	}
	t.proc.pid = t.pid
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", t.pid))
	if err != nil {
		return fmt.Errorf("qemu %s: %w", t.sock, classifyProcErr(err, t.pid, 0))
	}
	maps, err := ParseMaps(string(text))
	if err != nil {
		return fmt.Errorf("qemu %s: /proc/%d/maps: %w", t.sock, t.pid, err)
	}
	var blocks []RAMBlock // `info ramblock`, read when first needed
	for _, r := range regs {
		hva, err := t.hostAddr(r)
		from := "gpa2hva"
		if errors.Is(err, errNoGPA2HVA) {
			if blocks == nil {
				text, err := t.qmp.HMP("info ramblock")
				if err != nil {
					return err
				}
				if blocks, err = ParseRAMBlocks(text); err != nil {
					return fmt.Errorf("qemu %s: %w", t.sock, err)
				}
			}
			b, ok := blockFor(blocks, r.Name)
			if !ok {
				return fmt.Errorf("qemu %s: region %q is in no RAM block of `info ramblock`: %w", t.sock, r.Name, vmi.ErrFormat)
			}
			base, gerr := GuessBlockHVA(maps, b, files[r.Name].path)
			if gerr != nil {
				return fmt.Errorf("qemu %s: %w", t.sock, gerr)
			}
			hva, err, from = base+r.Offset, nil, fmt.Sprintf("/proc/%d/maps", t.pid)
		}
		if err != nil {
			return err
		}
		if err := checkMapped(maps, hva, r.Len()); err != nil {
			return fmt.Errorf("qemu %s: RAM block %q: guest-physical %#x-%#x is at host address %#x (from %s), which process %d, the QMP socket's peer, does not map readable: is that process QEMU? (a socket QEMU inherited from a manager such as libvirt names the manager): %w",
				t.sock, r.Name, r.Start, r.End, hva, from, t.pid, vmi.ErrFormat)
		}
		t.regions = append(t.regions, mapped{Range: vmi.Range{Start: r.Start, End: r.End + 1}, block: r.Name, hva: hva})
		t.nProc++
	}
	var probe [1]byte
	last := t.regions[len(t.regions)-1]
	if err := t.proc.read(probe[:], last.hva); err != nil {
		return fmt.Errorf("qemu %s: %w", t.sock, classifyProcErr(err, t.pid, last.hva))
	}
	return nil
}

// forceMapsGuess makes hostAddr act as if QEMU had no gpa2hva, for tests
// of GuessBlockHVA on a live QEMU.
var forceMapsGuess = false

// hostAddr returns the host address of region r's first byte in QEMU.
func (t *Target) hostAddr(r Region) (uint64, error) {
	if forceMapsGuess {
		return 0, errNoGPA2HVA
	}
	first, err := t.gpa2hva(r.Start, r.Name)
	if err != nil || r.Len() == 1 {
		return first, err
	}
	last, err := t.gpa2hva(r.End, r.Name)
	if err != nil {
		return 0, err
	}
	if last-first != r.Len()-1 {
		return 0, fmt.Errorf("qemu %s: RAM block %q: guest-physical %#x-%#x is not contiguous in QEMU (host %#x and %#x): %w",
			t.sock, r.Name, r.Start, r.End, first, last, vmi.ErrUnsupported)
	}
	return first, nil
}

func (t *Target) gpa2hva(pa uint64, name string) (uint64, error) {
	text, err := t.qmp.HMP(fmt.Sprintf("gpa2hva %#x", pa))
	if err != nil {
		return 0, err
	}
	hva, region, err := ParseGPA2HVA(text)
	if err != nil {
		return 0, fmt.Errorf("qemu %s: RAM block %q: %w", t.sock, name, err)
	}
	if region != name {
		return 0, fmt.Errorf("qemu %s: gpa2hva %#x names region %q, but `info mtree -f` says %q: %w", t.sock, pa, region, name, vmi.ErrFormat)
	}
	return hva, nil
}
