package linux

import (
	"fmt"
	"slices"

	"github.com/xascript/xascript/vmi"
)

// Per-cpu variables (include/linux/percpu-defs.h, mm/percpu.c): a static
// per-cpu variable's symbol is its address in the per-cpu section
// (__per_cpu_start to __per_cpu_end; an offset from 0 on x86-64 up to 6.14,
// whose kallsyms marks them "A"), and CPU n's copy lies __per_cpu_offset[n]
// further on (per_cpu_ptr). A module's per-cpu symbols are addresses in the
// same per-cpu space. A kernel built without SMP has no __per_cpu_offset:
// its one copy is at the symbol itself.

// maxCPUs bounds nr_cpu_ids as the guest states it: x86's NR_CPUS is at
// most 8192 (MAXSMP); a larger value is a forgery, not a machine.
const maxCPUs = 1 << 16

// nrCPUs returns nr_cpu_ids (CPU numbers are below it) and whether the
// kernel is SMP (has __per_cpu_offset).
func (k *Kernel) nrCPUs() (int, bool, error) {
	if _, smp := k.kernelSymbol("__per_cpu_offset"); !smp {
		return 1, false, nil
	}
	if a, ok := k.kernelSymbol("nr_cpu_ids"); ok {
		n, err := k.ReadUintVirt(a, 4)
		if err != nil {
			return 0, true, fmt.Errorf("read nr_cpu_ids at %#x: %w", a, err)
		}
		if n == 0 || n > maxCPUs {
			return 0, true, fmt.Errorf("nr_cpu_ids at %#x is %d, not 1 to %d: %w", a, n, maxCPUs, vmi.ErrFormat)
		}
		return int(n), true, nil
	}
	// CONFIG_FORCE_NR_CPUS makes nr_cpu_ids the constant NR_CPUS: the
	// bits of a struct cpumask.
	size, err := k.Sizeof("cpumask")
	if err != nil {
		return 0, true, fmt.Errorf("no nr_cpu_ids symbol, and the size of struct cpumask: %w", err)
	}
	if size == 0 || size*8 > maxCPUs {
		return 0, true, fmt.Errorf("struct cpumask of %d bytes: %w", size, vmi.ErrFormat)
	}
	return int(size * 8), true, nil
}

// PerCPU returns the address of CPU cpu's copy of the per-cpu variable
// name (per_cpu_ptr(&name, cpu)).
func (k *Kernel) PerCPU(name string, cpu int) (uint64, error) {
	sym, inKernel := k.kernelSymbol(name)
	if !inKernel {
		var ok bool
		if sym, ok = k.moduleSymbol(name); !ok {
			return 0, k.missingSymbol(name)
		}
	}
	if err := k.checkPerCPU(name, sym, inKernel); err != nil {
		return 0, err
	}
	nr, smp, err := k.nrCPUs()
	if err != nil {
		return 0, fmt.Errorf("per-cpu %s: %w", name, err)
	}
	if cpu < 0 || cpu >= nr {
		return 0, fmt.Errorf("per-cpu %s: no CPU %d: the kernel's CPU numbers are 0 to %d (nr_cpu_ids %d): %w",
			name, cpu, nr-1, nr, vmi.ErrNotFound)
	}
	if !smp {
		return sym, nil
	}
	offs, _ := k.kernelSymbol("__per_cpu_offset")
	ptr := k.PointerSize()
	slot := offs + uint64(cpu*ptr)
	off, err := k.ReadUintVirt(slot, ptr)
	if err != nil {
		return 0, fmt.Errorf("per-cpu %s: read __per_cpu_offset[%d] at %#x: %w", name, cpu, slot, err)
	}
	a := sym + off
	if ptr == 4 {
		a &= 0xffffffff
	}
	return a, nil
}

// checkPerCPU refuses a symbol that is not a per-cpu variable, whose
// "per-cpu copy" would be some unrelated address: a kernel symbol outside
// the per-cpu section, or a module symbol inside the module's own memory.
func (k *Kernel) checkPerCPU(name string, sym uint64, inKernel bool) error {
	if inKernel {
		start, ok1 := k.kernelSymbol("__per_cpu_start")
		end, ok2 := k.kernelSymbol("__per_cpu_end")
		if ok1 && ok2 && (sym < start || sym >= end) {
			return fmt.Errorf("%s at %#x is not a per-cpu variable (the per-cpu section is %#x-%#x): %w",
				name, sym, start, end, vmi.ErrNotFound)
		}
		return nil
	}
	if t, err := k.ModuleSymbols(); err == nil {
		if h, ok := t.At(sym); ok {
			return fmt.Errorf("%s at %#x is not a per-cpu variable: it lies in the %s memory of module %s: %w",
				name, sym, h.Span.Kind, h.Module.Name, vmi.ErrNotFound)
		}
	}
	return nil
}

// cpuMasks are the kernel's CPU sets (kernel/cpu.c, __cpu_*_mask).
var cpuMasks = []string{"possible", "present", "online", "active"}

// CPUs lists the CPUs in one of the kernel's CPU sets: "possible",
// "present", "online" or "active" (cpu_online_mask and friends), in
// increasing order.
func (k *Kernel) CPUs(set string) ([]int, error) {
	if !slices.Contains(cpuMasks, set) {
		return nil, fmt.Errorf("no CPU set %q: want one of %v: %w", set, cpuMasks, vmi.ErrNotFound)
	}
	nr, smp, err := k.nrCPUs()
	if err != nil {
		return nil, err
	}
	sym := "__cpu_" + set + "_mask"
	mask, ok := k.kernelSymbol(sym)
	if !ok {
		if !smp {
			return []int{0}, nil // a uniprocessor kernel: CPU 0 is all there is
		}
		return nil, fmt.Errorf("CPU set %s: no symbol %s: %w", set, sym, vmi.ErrNotFound)
	}
	// A cpumask is a bitmap of unsigned longs, bit n for CPU n; x86 is
	// little-endian, so bit n is bit n%8 of byte n/8.
	ptr := k.PointerSize()
	buf := make([]byte, (nr+8*ptr-1)/(8*ptr)*ptr)
	if err := k.ReadVirt(buf, mask); err != nil {
		return nil, fmt.Errorf("CPU set %s: read %s at %#x: %w", set, sym, mask, err)
	}
	var cpus []int
	for n := range nr {
		if buf[n/8]&(1<<(n%8)) != 0 {
			cpus = append(cpus, n)
		}
	}
	return cpus, nil
}
