package bindings

import (
	"math"

	lua "github.com/yuin/gopher-lua"
)

// PerCPUer is implemented by guests that know the kernel's CPUs and its
// per-cpu areas (vmi/linux.Kernel).
type PerCPUer interface {
	// PerCPU is the address of CPU cpu's copy of per-cpu variable name.
	PerCPU(name string, cpu int) (uint64, error)
	// CPUs lists the CPUs of a set: "possible", "present", "online",
	// "active".
	CPUs(set string) ([]int, error)
}

func percpuArea(env *Env) Area {
	return Area{
		Name:        "percpu",
		Title:       "CPUs and per-cpu variables",
		NeedsTarget: true,
		Doc: "The kernel keeps one copy of each per-cpu variable (`DEFINE_PER_CPU`: `runqueues`, `current_task` up " +
			"to 6.1, `pcpu_hot` since 6.2) for every CPU. `percpu` gives the address of one CPU's copy, as the kernel's " +
			"`per_cpu_ptr` computes it (the symbol plus `__per_cpu_offset[cpu]`; on a kernel built without SMP, the " +
			"symbol itself); `cpus` lists the CPU numbers to ask for.",
		Bindings: []Binding{
			{Name: "percpu", Signature: "percpu(name, cpu) -> address | nil, err",
				Doc: "Returns the address of CPU `cpu`'s copy of the per-cpu variable `name` (a kernel or module " +
					"symbol): `percpu(\"runqueues\", 0)` is CPU 0's `struct rq`. `nil, err` when the symbol is unknown, " +
					"is not a per-cpu variable, or `cpu` is not below the kernel's `nr_cpu_ids`.",
				Fn: func(L *lua.LState) int {
					p := needPerCPU(L, env, "percpu")
					name := L.CheckString(1)
					cpu := L.CheckNumber(2)
					if f := float64(cpu); f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
						L.ArgError(2, "cpu must be a CPU number (a whole number from 0), got "+cpu.String())
					}
					a, err := p.PerCPU(name, int(cpu))
					if err != nil {
						return fault(L, err)
					}
					pushAddress(L, env, a)
					return 1
				}},
			{Name: "cpus", Signature: "cpus([set]) -> table | nil, err",
				Doc: "Returns the CPU numbers of one of the kernel's CPU sets, in increasing order, as a list: " +
					"`\"online\"` (the default: `cpu_online_mask`), `\"possible\"` (every CPU that may ever be brought up, " +
					"each with its per-cpu area), `\"present\"` or `\"active\"`. A kernel built without SMP has CPU 0 only. " +
					"`for _, cpu in ipairs(cpus()) do ... percpu(\"runqueues\", cpu) ... end`.",
				Fn: func(L *lua.LState) int {
					p := needPerCPU(L, env, "cpus")
					set := L.OptString(1, "online")
					list, err := p.CPUs(set)
					if err != nil {
						return fault(L, err)
					}
					t := L.CreateTable(len(list), 0)
					for _, c := range list {
						t.Append(lua.LNumber(c))
					}
					L.Push(t)
					return 1
				}},
		},
	}
}

func needPerCPU(L *lua.LState, env *Env, fn string) PerCPUer {
	p, ok := needGuest(L, env).(PerCPUer)
	if !ok {
		L.RaiseError("%s: this target does not know the kernel's CPUs", fn)
	}
	return p
}
