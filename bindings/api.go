package bindings

import (
	"context"
	"io"
	"sort"

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
	Name     string
	Title    string
	Doc      string
	Bindings []Binding
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

	records   record.Encoder // emit's, so text columns line up across records
	recordBuf []byte
	scratch   [8]byte
	addressMT *lua.LTable
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
		symbolsArea(env),
		listsArea(env),
		targetArea(env),
		timeArea(env),
		diskArea(env),
		emitArea(env),
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
	for _, a := range Areas(env) {
		for _, b := range a.Bindings {
			setGlobalPath(L, b.Name, L.NewFunction(b.Fn))
		}
	}
	L.SetGlobal("help", L.NewFunction(help))
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

// help(name) returns a binding's signature and doc; help() lists all names.
func help(L *lua.LState) int {
	if L.GetTop() == 0 || L.Get(1) == lua.LNil {
		out := "functions:"
		for _, n := range Names() {
			out += " " + n
		}
		L.Push(lua.LString(out + "\nhelp(\"name\") describes one."))
		return 1
	}
	name := L.CheckString(1)
	b, ok := Lookup(name)
	if !ok {
		L.Push(lua.LNil)
		L.Push(lua.LString("no function named " + name))
		return 2
	}
	L.Push(lua.LString(b.Signature + "\n\n" + b.Doc))
	return 1
}

// loop returns the event loop, making it on first use.
func (env *Env) loop() *Loop {
	if env.Loop == nil {
		env.Loop = NewLoop()
	}
	return env.Loop
}
