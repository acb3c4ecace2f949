package bindings

import (
	"strings"

	"github.com/xascript/xascript/diskmon"
)

// The types an editor needs to complete and check a monitor, for the LuaLS
// declarations that luals.go writes (scripts/types/xascript.lua).
//
// A binding's Signature names its parameters and results in words
// ("read_u32(addr) -> number | nil, err"); the tables below give each word
// its LuaLS type, so that every signature keeps one spelling for docs, help()
// and the editor. A parameter name means the same type in every binding
// (addr, head and va are addresses; struct and member are strings), except
// where luaParamTypes has a "binding.param" entry (the callback fn differs
// per binding). The objects that bindings return (the address type, a watch,
// guest_info's table, a disk event) are declared in luaClasses; tests build
// each for real and fail when its fields or methods differ from these lists.

// luaParamTypes maps a parameter name, or "binding.param" for one binding's,
// to its LuaLS type.
var luaParamTypes = map[string]string{
	"addr":    "xascript.addrlike",
	"head":    "xascript.addrlike",
	"va":      "xascript.addrlike",
	"m":       "xascript.addrlike",
	"n":       "integer",
	"max":     "integer",
	"limit":   "integer",
	"name":    "string",
	"struct":  "string",
	"member":  "string",
	"type":    "string",
	"path":    "string",
	"v":       "xascript.view",
	"xa":      "xascript.addrlike",
	"idr":     "xascript.addrlike",
	"tree":    "xascript.addrlike",
	"first":   "xascript.addrlike?",
	"seconds": "number",
	"version": "string",
	"...":     "any",
	"value":   "xascript.addrlike",
	"data":    "string",
	"s":       "string",
	"cpu":     "integer",
	"set":     "\"online\"|\"possible\"|\"present\"|\"active\"",
	"x":       "xascript.bitlike",
	"y":       "xascript.bitlike",
	"mask":    "xascript.bitlike",
	"pid":     "integer",
	"task":    "xascript.addrlike",

	"addr.x":              "address|xascript.view|number|string",
	"offsetof.struct":     "string|xascript.view",
	"sizeof.type":         "string|xascript.view",
	"enum.enum":           "string?",
	"list.type":           "string?",
	"hlist.type":          "string?",
	"hlist_nulls.type":    "string?",
	"rbtree.type":         "string?",
	"list.member":         "string?",
	"hlist.member":        "string?",
	"hlist_nulls.member":  "string?",
	"rbtree.member":       "string?",
	"is_address.x":        "any",
	"walk_list.struct":    "string?",
	"walk_list.fn":        "fun(entry: address): boolean?",
	"on_disk_event.fn":    "fun(ev: xascript.disk_event)",
	"on_disk_event.opts":  "xascript.watch_options",
	"every.fn":            "fun(): boolean?",
	"with_paused.fn":      "fun(...): ...",
	"container_of.struct": "string",
	"emit.record":         "table<string, any>",
	"emit.order":          "string[]",
}

// luaReturn is the LuaLS type of one word of a signature's results, and the
// name LuaLS shows for that result ("err").
type luaReturn struct{ Type, Name string }

var luaReturnTypes = map[string]luaReturn{
	"number":       {"number", ""},
	"string":       {"string", ""},
	"boolean":      {"boolean", ""},
	"address":      {"address", ""},
	"true":         {"true", ""},
	"nil":          {"nil", ""},
	"err":          {"string", "err"},
	"count":        {"integer", "count"},
	"watch":        {"xascript.watch", ""},
	"timer":        {"xascript.timer", ""},
	"object":       {"xascript.guest_info", ""},
	"process":      {"xascript.process", ""},
	"vmas":         {"xascript.vma[]", ""},
	"fn's results": {"any", "..."},
	"symbol_info":  {"xascript.symbol_info", "info"},
	"table":        {"integer[]", ""},
	"view":         {"xascript.view", ""},
	"walk":         {"xascript.walk", ""},
	"value":        {"any", ""},
}

// LuaClass is a type that bindings hand to scripts: declared for editors,
// checked against the real objects by tests.
type LuaClass struct {
	Name string // LuaLS class name: "address", "xascript.watch"
	Doc  string
	// Global is set for a class that is also a global table (xascript):
	// its functions are the bindings named "Name.function".
	Global    bool
	Fields    []LuaField
	Methods   []Binding // Name, Signature (parameter and result words as above) and Doc; no Fn
	Operators []string  // LuaLS ---@operator lines: "add(address|integer): address"
}

// LuaField is one field of a LuaClass; Optional fields may be absent (nil).
type LuaField struct {
	Name, Type, Doc string
	Optional        bool
}

// luaExtraGlobals are the global functions that are not in an Area (so not
// in docs/lua-api.md's list) but that a script may call.
var luaExtraGlobals = []Binding{
	{Name: "help", Signature: "help([name])",
		Doc: "Describes the function `name` (its signature and doc, as docs/lua-api.md has them); without `name`, lists every function."},
}

// diskOps are the values of a disk event's op, for completion.
var diskOps = []diskmon.Op{diskmon.OpMkdir, diskmon.OpRmdir, diskmon.OpMkfile, diskmon.OpRmfile, diskmon.OpRename,
	diskmon.OpWrite, diskmon.OpTruncate, diskmon.OpChmod, diskmon.OpChown, diskmon.OpError, diskmon.OpLost}

// luaAliases are LuaLS ---@alias lines: name and type.
func luaAliases() [][2]string {
	ops := make([]string, len(diskOps))
	for i, op := range diskOps {
		ops[i] = `"` + string(op) + `"`
	}
	return [][2]string{
		{"xascript.addrlike", "address|xascript.view|integer|string"},
		{"xascript.bitlike", "address|integer|string"},
		{"xascript.disk_op", strings.Join(ops, "|")},
	}
}

// luaAliasDocs say what each alias is for.
var luaAliasDocs = map[string]string{
	"xascript.addrlike": "What a function that takes an address accepts: an address, a view (its address), an exact integer below 2^53, or a decimal or `0x` hex string.",
	"xascript.bitlike":  "What the bit library takes: an address, an integer with magnitude below 2^53 (a negative one stands for its 64-bit two's complement), or a decimal or `0x` hex string.",
	"xascript.disk_op":  "A disk event's kind.",
}

var luaClasses = []LuaClass{
	{Name: "address", Doc: "A 64-bit guest value (an address or any u64); see `addr`.",
		Operators: []string{
			"add(address|integer): address",
			"sub(address|integer): address",
			"concat(string|number|address): string",
		},
		Methods: []Binding{
			{Name: "hex", Signature: "hex() -> string", Doc: "The value as `0x…` hex, like `tostring(a)`."},
			{Name: "tonumber", Signature: "tonumber() -> number", Doc: "The value as a Lua number; raises an error above 2^53."},
			{Name: "band", Signature: "band(m) -> address", Doc: "Bitwise and."},
			{Name: "bor", Signature: "bor(m) -> address", Doc: "Bitwise or."},
			{Name: "bxor", Signature: "bxor(m) -> address", Doc: "Bitwise exclusive or."},
			{Name: "shl", Signature: "shl(m) -> address", Doc: "Shifted left by `m` bits."},
			{Name: "shr", Signature: "shr(m) -> address", Doc: "Shifted right by `m` bits."},
			{Name: "as", Signature: "as(type) -> view | nil, err", Doc: "A typed view of the struct `type` at this address, as `view(type, a)`."},
			{Name: "key", Signature: "key() -> string", Doc: "A string that stands for the value, for use as a table key (addresses are userdata: two equal ones are different keys); `addr(k)` turns it back."},
		}},
	{Name: "xascript.view", Doc: "A kernel struct or union at an address, read through the kernel's types (see `view`): " +
		"each member of the struct is a field, of the Lua type its C type gives. Also an address: `addr(v)`, `v + n`, comparisons. " +
		"A `task_struct` view also has `t:space()`, which returns what `process_of(t)` does.",
		Operators: []string{
			"add(address|integer): address",
			"sub(address|integer): address",
			"concat(string|number|address): string",
		},
		Fields: []LuaField{{Name: "[string]", Type: "any", Doc: "A member of the struct: number, boolean, string, address, or a further view."}}},
	{Name: "xascript.walk", Doc: "A walk of a kernel container (`list`, `hlist`, `hlist_nulls`, `rbtree`, `xarray`, `idr`, `maple`), for a generic `for`.",
		Operators: []string{"call(any): any"},
		Methods: []Binding{
			{Name: "err", Signature: "err() -> string | nil", Doc: "Why the walk ended early (a fault, a cycle, too many entries), or nil when it reached the end."},
			{Name: "count", Signature: "count() -> number", Doc: "How many entries the walk has yielded."},
			{Name: "nulls", Signature: "nulls() -> number", Doc: "The nulls marker that ended an `hlist_nulls` walk."},
		}},
	{Name: "xascript.guest_info", Doc: "What `guest_info()` returns.",
		Fields: []LuaField{
			{Name: "target", Type: "string", Doc: "The target's kind (the dump format, a live QEMU or Xen guest)."},
			{Name: "paging", Type: "string", Doc: "`\"4-level\"`, `\"5-level\"`, `\"PAE\"`, ..."},
			{Name: "root", Type: "address", Doc: "The kernel's page-table root."},
			{Name: "root_source", Type: "string", Doc: "Where the root was found."},
			{Name: "banner", Type: "string", Doc: "The kernel's version banner."},
			{Name: "text_phys", Type: "address", Doc: "Physical address of `_text`."},
			{Name: "kaslr_virtual", Type: "address", Doc: "The virtual KASLR offset (wraps when negative)."},
			{Name: "kaslr_physical", Type: "address", Doc: "The physical KASLR offset (wraps when negative)."},
			{Name: "symbol_shift", Type: "address", Doc: "Added to the symbol file's addresses."},
			{Name: "symbols", Type: "integer", Doc: "How many symbols the profile has."},
			{Name: "notes", Type: "string[]", Doc: "Findings, e.g. a CPU root that did not map the kernel."},
		}},
	{Name: "xascript.process", Doc: "A process's user address space, as `process` and `process_of` return it.",
		Fields: []LuaField{
			{Name: "pid", Type: "integer", Doc: "Its pid."},
			{Name: "comm", Type: "string", Doc: "Its name (`task_struct.comm`)."},
			{Name: "task", Type: "address", Doc: "Its `task_struct`."},
			{Name: "mm", Type: "address", Doc: "Its `mm_struct`."},
			{Name: "pgd", Type: "address", Doc: "Kernel virtual address of its top-level page table (`mm->pgd`)."},
			{Name: "root", Type: "address", Doc: "Physical address of that table: the root of the process's page walk."},
		},
		Methods: processMethods},
	{Name: "xascript.vma", Doc: "One memory mapping of a process, `[start, stop)`, as `p:vmas()` lists them.",
		Fields: []LuaField{
			{Name: "start", Type: "address", Doc: "First address."},
			{Name: "stop", Type: "address", Doc: "One past the last address (`vm_end`; `end` is a Lua keyword)."},
			{Name: "flags", Type: "address", Doc: "`vm_flags` (VM_READ 0x1, VM_WRITE 0x2, VM_EXEC 0x4, VM_SHARED 0x8, ...)."},
			{Name: "perms", Type: "string", Doc: "The permissions as `/proc/PID/maps` prints them: `\"r-xp\"`."},
			{Name: "pgoff", Type: "address", Doc: "Offset in the file, in pages (`vm_pgoff`; for anonymous memory, its start in pages)."},
			{Name: "offset", Type: "address", Doc: "Offset in the file in bytes, as `/proc/PID/maps` prints it (0 for anonymous memory)."},
			{Name: "file", Type: "string", Optional: true, Doc: "The mapped file's path; absent for anonymous memory."},
			{Name: "file_error", Type: "string", Optional: true, Doc: "Why the mapped file's path could not be read."},
		}},
	{Name: "xascript.watch", Doc: "A disk watch, as `on_disk_event` returns it.",
		Fields: []LuaField{{Name: "path", Type: "string", Doc: "The watched path."}},
		Methods: []Binding{
			{Name: "close", Signature: "close()", Doc: "Ends the watch: no more events from it."},
		}},
	{Name: "xascript.timer", Doc: "A periodic timer, as `every` returns it.",
		Fields: []LuaField{{Name: "interval", Type: "number", Doc: "Seconds between calls."}},
		Methods: []Binding{
			{Name: "cancel", Signature: "cancel()", Doc: "Stops the timer: its function is not called again."},
		}},
	{Name: "xascript.watch_options", Doc: "The options of `on_disk_event`.",
		Fields: []LuaField{
			{Name: "recursive", Type: "boolean", Optional: true, Doc: "Watch every folder below too."},
			{Name: "files", Type: "boolean", Optional: true, Doc: "Also WRITE, TRUNCATE, CHMOD and CHOWN of the files in the folder."},
			{Name: "max_depth", Type: "integer", Optional: true, Doc: "How deep a recursive watch goes (default 16)."},
			{Name: "max_entries", Type: "integer", Optional: true, Doc: "How many entries a watch tracks at most (default 1,000,000)."},
		}},
	{Name: "xascript.disk_event", Doc: "One change in the guest's file system, as `on_disk_event` delivers it.",
		Fields: []LuaField{
			{Name: "op", Type: "xascript.disk_op", Doc: "What happened."},
			{Name: "path", Type: "string", Doc: "The path that changed."},
			{Name: "watch", Type: "string", Doc: "The watched path that reported it."},
			{Name: "old_path", Type: "string", Optional: true, Doc: "A RENAME's former path."},
			{Name: "error", Type: "string", Optional: true, Doc: "Why an ERROR or LOST happened."},
			{Name: "inode", Type: "integer", Optional: true, Doc: "The inode number."},
			{Name: "type", Type: "string", Optional: true, Doc: "`\"file\"`, `\"dir\"`, `\"symlink\"`, ..."},
			{Name: "size", Type: "integer", Optional: true, Doc: "Size in bytes."},
			{Name: "mode", Type: "integer", Optional: true, Doc: "Permission bits."},
			{Name: "uid", Type: "integer", Optional: true, Doc: "Owner."},
			{Name: "gid", Type: "integer", Optional: true, Doc: "Group."},
			{Name: "links", Type: "integer", Optional: true, Doc: "Hard link count."},
			{Name: "hardlink", Type: "boolean", Optional: true, Doc: "An existing file got another name."},
			{Name: "target", Type: "string", Optional: true, Doc: "A symlink's target."},
			{Name: "watch_ended", Type: "true", Optional: true, Doc: "The watched folder was removed: no more events."},
			{Name: "time", Type: "number", Optional: true, Doc: "When the write reached the tap, seconds since the epoch."},
			{Name: "ctime", Type: "number", Optional: true, Doc: "The guest's own timestamp, seconds since the epoch."},
		}},
	{Name: "xascript.symbol_info", Doc: "What `symbol_at` returns besides the name: the symbol an address lies in.",
		Fields: []LuaField{
			{Name: "name", Type: "string", Doc: "The symbol's name."},
			{Name: "module", Type: "string", Optional: true, Doc: "The module that defines it; nil for the kernel image."},
			{Name: "address", Type: "address", Doc: "The symbol's address."},
			{Name: "offset", Type: "integer", Doc: "The looked-up address minus the symbol's."},
			{Name: "type", Type: "string", Optional: true, Doc: "Its nm type letter (`\"T\"`, `\"t\"`, `\"D\"`, ...), as /proc/kallsyms prints it."},
			{Name: "text", Type: "boolean", Doc: "The address is code: the kernel's text (`_stext`-`_etext`, init text) or a module's."},
		}},
	{Name: "bit", Global: true, Doc: "Bitwise operations over 64-bit values (see the Bit operations section)."},
	{Name: "xascript", Global: true, Doc: "xascript's own table: its API version and `require_version`.",
		Fields: []LuaField{
			{Name: "api_version", Type: "string", Doc: "This Lua API's version, `\"MAJOR.MINOR\"`."},
		}},
}
