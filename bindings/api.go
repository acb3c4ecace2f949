package bindings

import (
	"context"
	"github.com/xascript/xascript/internal/panicsite"
	"io"
	"os"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/internal/record"
)

// Binding is one Lua global function with its documentation.
type Binding struct {
	Name      string // a global, or "table.name" for a field of a global table ("xascript.require_version")
	Signature string // e.g. "read_u32(addr) -> number | nil, err"; LuaLS types come from luatypes.go
	Doc       string // Markdown; first sentence is the summary
	Fn        lua.LGFunction
}

// Area groups the bindings of one concern; one Go file defines each area.
type Area struct {
	Name  string
	Title string
	Doc   string
	// NeedsTarget: every binding of the area acts on the target (a dump, a
	// live guest), so a script that calls one cannot run without one.
	NeedsTarget bool
	Bindings    []Binding
}

// Env is what bindings act on. Guest may be nil (a script run with no
// target): bindings that need it then raise "no target" errors.
type Env struct {
	Guest Guest
	// Ctx cancels long-running bindings (list walks, sleep) when the user
	// interrupts.
	Ctx context.Context
	// ListLimit bounds walk_list when the script gives no limit.
	ListLimit int
	// Disk is the guest's disk for on_disk_event (nil: no --disk given).
	Disk DiskWatcher
	// Loop delivers events to the Lua goroutine; made on first use.
	Loop *Loop
	// Output is the script's standard output, where print writes; the
	// runtime sets it to its buffered stdout. A binding that writes records
	// (emit) writes each whole record to it, then calls EndRecord, so that
	// records and printed lines stay in order and reach a terminal at once.
	Output RecordWriter
	// BeforeBlock is called by every binding before it waits for something
	// that may take long: sleep, pause and resume of a live guest, and any
	// wait for timers or disk events. The runtime sets it to flush its
	// output, so that what the script printed reaches its reader before the
	// script waits (a monitor that polls forever is read as it runs). Nil
	// does nothing; bindings call it through BlockingPoint.
	BeforeBlock func()
	// GuestName names the target in every record emit writes (its "guest"
	// field): the --dom name or id, the --qemu socket, the dump file's base
	// name. Empty: no target, no field. It is the one place a record's
	// guest comes from; with several guests, each Lua state's Env has its
	// own.
	GuestName string
	// RecordTime adds the time a record was written (its "time" field):
	// set when the target is live or a disk is watched as it is written,
	// where records are observations of now.
	RecordTime bool
	// JSON makes emit write JSON Lines instead of aligned text (--json).
	JSON bool
	// AllowWrite lets the write bindings change guest memory (--allow-write;
	// the target must then also be opened writable). Without it every
	// write_* raises errReadOnly.
	AllowWrite bool

	records   record.Encoder // emit's, so text columns line up across records
	recordBuf []byte
	// callbacks counts the Lua callbacks that bindings (walk_list,
	// with_paused) are running, for named.
	callbacks int

	scratch   [8]byte
	addressMT *lua.LTable
	viewState *viewState // typed views, made on first use (views.go)
	numbers   numberBox
}

// RecordWriter is a buffered output that knows where records end: a
// terminal sees each record when it ends, a pipe or file at the next
// blocking point.
type RecordWriter interface {
	io.Writer
	// EndRecord marks the end of one record (a line of print, one emitted
	// record).
	EndRecord() error
}

// BlockingPoint is what a binding calls before it blocks: it runs
// BeforeBlock.
func (env *Env) BlockingPoint() {
	if env.BeforeBlock != nil {
		env.BeforeBlock()
	}
}

// DefaultListLimit is walk_list's bound when neither the script nor the Env
// sets one.
const DefaultListLimit = 100000

// Areas returns every API area bound to env. Pass nil to list the API for
// documentation.
func Areas(env *Env) []Area {
	if env == nil {
		env = &Env{}
	}
	return []Area{
		versionArea(env),
		addressArea(env),
		memoryArea(env),
		writeArea(env),
		symbolsArea(env),
		percpuArea(env),
		listsArea(env),
		processArea(env),
		viewsArea(env),
		iterArea(env),
		targetArea(env),
		timeArea(env),
		timerArea(env),
		diskArea(env),
		emitArea(env),
		hashArea(env),
		bitArea(env),
	}
}

// Register installs the Lua API into L's globals.
func Register(L *lua.LState, env *Env) {
	if env.Ctx == nil {
		env.Ctx = context.Background()
	}
	if env.ListLimit <= 0 {
		env.ListLimit = DefaultListLimit
	}
	registerAddressType(L, env)
	registerVersion(L)
	registerFormat(L)
	for _, a := range Areas(env) {
		for _, b := range a.Bindings {
			setGlobalPath(L, b.Name, L.NewFunction(named(env, b.Name, b.Fn)))
		}
	}
	L.SetGlobal("help", L.NewFunction(named(env, "help", help(env))))
}

// named makes argument errors name the binding: "bad argument #1 to
// 'read_u32' (…)". gopher-lua names the function after the call site, so a
// binding called through pcall (pcall(read_u32, x)) or another Go function
// was "(anonymous)", and one called through a local alias had the alias's
// name; the binding's own name is put in as the error goes by. Only an
// error the binding raised itself is renamed, not one that comes up from a
// callback it called (walk_list's fn: its errors name their own function):
// bindings that call Lua count the callbacks under way (Env.callbacks),
// and an error raised while more are under way than when the binding was
// entered is left as it is. A Go panic under a binding becomes a script
// error naming the binding and the code that panicked (internal/panicsite).
// The deferred closure costs a few nanoseconds until a binding raises.
func named(env *Env, name string, fn lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		callbacks := env.callbacks
		defer func() {
			if p := recover(); p != nil {
				if e, ok := p.(*lua.ApiError); ok && env.callbacks == callbacks {
					if s, ok := e.Object.(lua.LString); ok {
						e.Object = lua.LString(nameArgError(string(s), name))
					}
				}
				env.callbacks = callbacks // the callback's decrement was skipped
				if _, ok := p.(*lua.ApiError); !ok {
					// A Go panic (a bug hit on what the guest holds, say)
					// would reach the script as a bare "nil pointer
					// dereference": name the binding and the code.
					L.RaiseError("%s: internal error (%s): %v; please report", name, panicsite.Where(), p)
				}
				panic(p)
			}
		}()
		return fn(L)
	}
}

// nameArgError puts name into gopher-lua's "bad argument #N to F (…)".
func nameArgError(msg, name string) string {
	i := strings.Index(msg, "bad argument #")
	if i < 0 {
		return msg
	}
	to := strings.Index(msg[i:], " to ")
	if to < 0 {
		return msg
	}
	from := i + to + len(" to ")
	end := strings.Index(msg[from:], " (")
	if end < 0 {
		return msg
	}
	return msg[:from] + "'" + name + "'" + msg[from+end:]
}

// NeedsTarget tells whether the global function name acts on the target:
// a script that uses one cannot run without a target.
func NeedsTarget(name string) bool {
	for _, a := range Areas(nil) {
		for _, b := range a.Bindings {
			if b.Name == name {
				return a.NeedsTarget
			}
		}
	}
	return false
}

// Lookup finds a binding by name across all areas.
func Lookup(name string) (Binding, bool) {
	for _, a := range Areas(nil) {
		for _, b := range a.Bindings {
			if b.Name == name {
				return b, true
			}
		}
	}
	return Binding{}, false
}

// Names lists every binding name, sorted.
func Names() []string {
	var names []string
	for _, a := range Areas(nil) {
		for _, b := range a.Bindings {
			names = append(names, b.Name)
		}
	}
	sort.Strings(names)
	return names
}

// help prints to the script's output: help() lists every function, and
// help("name") shows one's signature and doc (an unknown name says so).
// It returns nothing, so that `help("x")` typed alone prints once.
func help(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		var text string
		if L.GetTop() == 0 || L.Get(1) == lua.LNil {
			text = "functions: " + strings.Join(Names(), " ") + "\nhelp(\"name\") describes one."
		} else if b, ok := Lookup(L.CheckString(1)); ok {
			text = b.Signature + "\n\n" + b.Doc
		} else {
			text = "help: no function named " + L.CheckString(1) + "; help() lists them"
		}
		var w io.Writer = os.Stdout
		if env.Output != nil {
			w = env.Output
		}
		io.WriteString(w, text+"\n")
		if env.Output != nil {
			env.Output.EndRecord()
		}
		return 0
	}
}

// loop returns the event loop, making it on first use.
func (env *Env) loop() *Loop {
	if env.Loop == nil {
		env.Loop = NewLoop()
	}
	return env.Loop
}
