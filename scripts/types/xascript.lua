---@meta xascript

-- xascript's Lua API 1.8 for lua-language-server (LuaLS): completion, hover docs and type checks
-- of monitor scripts. Generated from the doc strings in bindings/*.go by `make docs`; do not edit.
-- scripts/.luarc.json points LuaLS here; for scripts elsewhere, add this folder to your
-- .luarc.json's "workspace.library". The reference is docs/lua-api.md.

---What a function that takes an address accepts: an address, a view (its address), an exact integer below 2^53, or a decimal or `0x` hex string.
---@alias xascript.addrlike address|xascript.view|integer|string

---What the bit library takes: an address, an integer with magnitude below 2^53 (a negative one stands for its 64-bit two's complement), or a decimal or `0x` hex string.
---@alias xascript.bitlike address|integer|string

---A disk event's kind.
---@alias xascript.disk_op "MKDIR"|"RMDIR"|"MKFILE"|"RMFILE"|"RENAME"|"WRITE"|"TRUNCATE"|"CHMOD"|"CHOWN"|"ERROR"|"LOST"

---A 64-bit guest value (an address or any u64); see `addr`.
---@class address
---@operator add(address|integer): address
---@operator sub(address|integer): address
---@operator concat(string|number|address): string
local address = {}

---The value as `0x…` hex, like `tostring(a)`.
---@return string
function address:hex() end

---The value as a Lua number; raises an error above 2^53.
---@return number
function address:tonumber() end

---Bitwise and.
---@param m xascript.addrlike
---@return address
function address:band(m) end

---Bitwise or.
---@param m xascript.addrlike
---@return address
function address:bor(m) end

---Bitwise exclusive or.
---@param m xascript.addrlike
---@return address
function address:bxor(m) end

---Shifted left by `m` bits.
---@param m xascript.addrlike
---@return address
function address:shl(m) end

---Shifted right by `m` bits.
---@param m xascript.addrlike
---@return address
function address:shr(m) end

---A typed view of the struct `type` at this address, as `view(type, a)`.
---@param type string
---@return xascript.view?
---@return string? err
function address:as(type) end

---A string that stands for the value, for use as a table key (addresses are userdata: two equal ones are different keys); `addr(k)` turns it back.
---@return string
function address:key() end

---A kernel struct or union at an address, read through the kernel's types (see `view`): each member of the struct is a field, of the Lua type its C type gives. Also an address: `addr(v)`, `v + n`, comparisons. A `task_struct` view also has `t:space()`, which returns what `process_of(t)` does.
---@class xascript.view
---@operator add(address|integer): address
---@operator sub(address|integer): address
---@operator concat(string|number|address): string
---@field [string] any A member of the struct: number, boolean, string, address, or a further view.

---A walk of a kernel container (`list`, `hlist`, `hlist_nulls`, `rbtree`, `xarray`, `idr`, `maple`), for a generic `for`.
---@class xascript.walk
---@operator call(any): any
local xascript_walk = {}

---Why the walk ended early (a fault, a cycle, too many entries), or nil when it reached the end.
---@return string?
function xascript_walk:err() end

---How many entries the walk has yielded.
---@return number
function xascript_walk:count() end

---The nulls marker that ended an `hlist_nulls` walk.
---@return number
function xascript_walk:nulls() end

---What `guest_info()` returns.
---@class xascript.guest_info
---@field target string The target's kind (the dump format, a live QEMU or Xen guest).
---@field paging string `"4-level"`, `"5-level"`, `"PAE"`, ...
---@field root address The kernel's page-table root.
---@field root_source string Where the root was found.
---@field banner string The kernel's version banner.
---@field text_phys address Physical address of `_text`.
---@field kaslr_virtual address The virtual KASLR offset (wraps when negative).
---@field kaslr_physical address The physical KASLR offset (wraps when negative).
---@field symbol_shift address Added to the symbol file's addresses.
---@field symbols integer How many symbols the profile has.
---@field notes string[] Findings, e.g. a CPU root that did not map the kernel.

---A process's user address space, as `process` and `process_of` return it.
---@class xascript.process
---@field pid integer Its pid.
---@field comm string Its name (`task_struct.comm`).
---@field task address Its `task_struct`.
---@field mm address Its `mm_struct`.
---@field pgd address Kernel virtual address of its top-level page table (`mm->pgd`).
---@field root address Physical address of that table: the root of the process's page walk.
local xascript_process = {}

---Reads an unsigned byte at the process's virtual address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function xascript_process:read_u8(addr) end

---Reads an unsigned 16-bit integer.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function xascript_process:read_u16(addr) end

---Reads an unsigned 32-bit integer.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function xascript_process:read_u32(addr) end

---Reads a 64-bit value, as an address value.
---@param addr xascript.addrlike
---@return address?
---@return string? err
function xascript_process:read_u64(addr) end

---Reads a pointer of the kernel's size (4 or 8 bytes).
---@param addr xascript.addrlike
---@return address?
---@return string? err
function xascript_process:read_addr(addr) end

---Reads a NUL-terminated string of at most `max` bytes (default 256, at most 1048576).
---@param addr xascript.addrlike
---@param max? integer
---@return string?
---@return string? err
function xascript_process:read_cstring(addr, max) end

---Reads `n` bytes (at most 16777216).
---@param addr xascript.addrlike
---@param n integer
---@return string?
---@return string? err
function xascript_process:read_bytes(addr, n) end

---Translates the process's virtual address `va` to a guest-physical one.
---@param va xascript.addrlike
---@return address?
---@return string? err
function xascript_process:translate(va) end

---Lists the process's memory mappings in ascending order (Linux: the maple tree `mm->mm_mt` from 6.1 on, the `mmap` list before). A mapped file's path is the names of its dentries up to the root of its file system: a file on a file system mounted elsewhere than `/` is named from that file system's root.
---@return xascript.vma[]?
---@return string? err
function xascript_process:vmas() end

---One memory mapping of a process, `[start, stop)`, as `p:vmas()` lists them.
---@class xascript.vma
---@field start address First address.
---@field stop address One past the last address (`vm_end`; `end` is a Lua keyword).
---@field flags address `vm_flags` (VM_READ 0x1, VM_WRITE 0x2, VM_EXEC 0x4, VM_SHARED 0x8, ...).
---@field perms string The permissions as `/proc/PID/maps` prints them: `"r-xp"`.
---@field pgoff address Offset in the file, in pages (`vm_pgoff`; for anonymous memory, its start in pages).
---@field offset address Offset in the file in bytes, as `/proc/PID/maps` prints it (0 for anonymous memory).
---@field file? string The mapped file's path; absent for anonymous memory.
---@field file_error? string Why the mapped file's path could not be read.

---A disk watch, as `on_disk_event` returns it.
---@class xascript.watch
---@field path string The watched path.
local xascript_watch = {}

---Ends the watch: no more events from it.
function xascript_watch:close() end

---A periodic timer, as `every` returns it.
---@class xascript.timer
---@field interval number Seconds between calls.
local xascript_timer = {}

---Stops the timer: its function is not called again.
function xascript_timer:cancel() end

---The options of `on_disk_event`.
---@class xascript.watch_options
---@field recursive? boolean Watch every folder below too.
---@field files? boolean Also WRITE, TRUNCATE, CHMOD and CHOWN of the files in the folder.
---@field max_depth? integer How deep a recursive watch goes (default 16).
---@field max_entries? integer How many entries a watch tracks at most (default 1,000,000).

---One change in the guest's file system, as `on_disk_event` delivers it.
---@class xascript.disk_event
---@field op xascript.disk_op What happened.
---@field path string The path that changed.
---@field watch string The watched path that reported it.
---@field old_path? string A RENAME's former path.
---@field error? string Why an ERROR or LOST happened.
---@field inode? integer The inode number.
---@field type? string `"file"`, `"dir"`, `"symlink"`, ...
---@field size? integer Size in bytes.
---@field mode? integer Permission bits.
---@field uid? integer Owner.
---@field gid? integer Group.
---@field links? integer Hard link count.
---@field hardlink? boolean An existing file got another name.
---@field target? string A symlink's target.
---@field watch_ended? true The watched folder was removed: no more events.
---@field time? number When the write reached the tap, seconds since the epoch.
---@field ctime? number The guest's own timestamp, seconds since the epoch.

---What `symbol_at` returns besides the name: the symbol an address lies in.
---@class xascript.symbol_info
---@field name string The symbol's name.
---@field module? string The module that defines it; nil for the kernel image.
---@field address address The symbol's address.
---@field offset integer The looked-up address minus the symbol's.
---@field type? string Its nm type letter (`"T"`, `"t"`, `"D"`, ...), as /proc/kallsyms prints it.
---@field text boolean The address is code: the kernel's text (`_stext`-`_etext`, init text) or a module's.

---Bitwise operations over 64-bit values (see the Bit operations section).
---@class bit
bit = {}

---xascript's own table: its API version and `require_version`.
---@class xascript
---@field api_version string This Lua API's version, `"MAJOR.MINOR"`.
xascript = {}

-- API version

---Raises an error unless this xascript's API is at least `version` (`"MAJOR.MINOR"` or `"MAJOR"`, a string: the number `1.10` would read as 1.1), compared number by number, so a script that needs a newer function fails at its first line with a message that says which version it needs instead of at a call to a function that does not exist. Call it at the top of a script or library: `xascript.require_version("1.0")`.
---@param version string
function xascript.require_version(version) end

-- Addresses and 64-bit values

---Converts `x` (a number below 2^53, a decimal or `0x` hex string, or an address) to an address. Raises an error when `x` is not one.
---@param x address|xascript.view|number|string
---@return address
function addr(x) end

---Tells whether `x` is an address value (a view is not one, though it is accepted wherever an address is).
---@param x any
---@return boolean
function is_address(x) end

-- Reading guest memory

---Reads an unsigned byte at kernel virtual address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u8(addr) end

---Reads an unsigned 16-bit integer at kernel virtual address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u16(addr) end

---Reads an unsigned 32-bit integer at kernel virtual address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u32(addr) end

---Reads a 64-bit value at kernel virtual address `addr`, as an address value (64 bits do not fit a Lua number).
---@param addr xascript.addrlike
---@return address?
---@return string? err
function read_u64(addr) end

---Reads a guest pointer (4 or 8 bytes, as the guest's mode says) at kernel virtual address `addr`.
---@param addr xascript.addrlike
---@return address?
---@return string? err
function read_addr(addr) end

---Reads a NUL-terminated string at kernel virtual address `addr`, at most `max` bytes (default 256, at most 1048576); the string stops at the first NUL or at `max`.
---@param addr xascript.addrlike
---@param max? integer
---@return string?
---@return string? err
function read_cstring(addr, max) end

---Reads `n` bytes (at most 16777216) at kernel virtual address `addr` as a Lua string.
---@param addr xascript.addrlike
---@param n integer
---@return string?
---@return string? err
function read_bytes(addr, n) end

---Reads an unsigned byte at guest-physical address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u8_pa(addr) end

---Reads an unsigned 16-bit integer at guest-physical address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u16_pa(addr) end

---Reads an unsigned 32-bit integer at guest-physical address `addr`.
---@param addr xascript.addrlike
---@return number?
---@return string? err
function read_u32_pa(addr) end

---Reads a 64-bit value at guest-physical address `addr`, as an address value (64 bits do not fit a Lua number).
---@param addr xascript.addrlike
---@return address?
---@return string? err
function read_u64_pa(addr) end

---Reads a guest pointer (4 or 8 bytes, as the guest's mode says) at guest-physical address `addr`.
---@param addr xascript.addrlike
---@return address?
---@return string? err
function read_addr_pa(addr) end

---Reads a NUL-terminated string at guest-physical address `addr`, at most `max` bytes (default 256, at most 1048576); the string stops at the first NUL or at `max`.
---@param addr xascript.addrlike
---@param max? integer
---@return string?
---@return string? err
function read_cstring_pa(addr, max) end

---Reads `n` bytes (at most 16777216) at guest-physical address `addr` as a Lua string.
---@param addr xascript.addrlike
---@param n integer
---@return string?
---@return string? err
function read_bytes_pa(addr, n) end

---Translates kernel virtual address `va` to its guest-physical address through the kernel's page tables.
---@param va xascript.addrlike
---@return address?
---@return string? err
function translate(va) end

-- Writing guest memory

---Stores `value`, an unsigned 8-bit integer, at kernel virtual address `addr`. `value` is an integer in [0, 2^8), or a negative one down to -2^7, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u8(addr, value) end

---Stores `value`, an unsigned 16-bit integer, at kernel virtual address `addr`. `value` is an integer in [0, 2^16), or a negative one down to -2^15, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u16(addr, value) end

---Stores `value`, an unsigned 32-bit integer, at kernel virtual address `addr`. `value` is an integer in [0, 2^32), or a negative one down to -2^31, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u32(addr, value) end

---Stores `value`, an unsigned 64-bit integer, at kernel virtual address `addr`. `value` is an address value (64 bits do not fit a Lua number), an exact integer or a hex string.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u64(addr, value) end

---Stores the bytes of the string `data` (at most 16777216) at kernel virtual address `addr`, as `read_bytes` reads them.
---@param addr xascript.addrlike
---@param data string
---@return true?
---@return string? err
function write_bytes(addr, data) end

---Stores `value`, an unsigned 8-bit integer, at guest-physical address `addr`. `value` is an integer in [0, 2^8), or a negative one down to -2^7, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u8_pa(addr, value) end

---Stores `value`, an unsigned 16-bit integer, at guest-physical address `addr`. `value` is an integer in [0, 2^16), or a negative one down to -2^15, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u16_pa(addr, value) end

---Stores `value`, an unsigned 32-bit integer, at guest-physical address `addr`. `value` is an integer in [0, 2^32), or a negative one down to -2^31, stored as two's complement.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u32_pa(addr, value) end

---Stores `value`, an unsigned 64-bit integer, at guest-physical address `addr`. `value` is an address value (64 bits do not fit a Lua number), an exact integer or a hex string.
---@param addr xascript.addrlike
---@param value xascript.addrlike
---@return true?
---@return string? err
function write_u64_pa(addr, value) end

---Stores the bytes of the string `data` (at most 16777216) at guest-physical address `addr`, as `read_bytes_pa` reads them.
---@param addr xascript.addrlike
---@param data string
---@return true?
---@return string? err
function write_bytes_pa(addr, data) end

-- Symbols and struct layouts

---Returns the run-time address of kernel symbol `name`, or `nil, err` when the profile does not know it. A name the kernel image lacks is looked up in the loaded modules, in list order, as the kernel's `kallsyms_lookup_name` does: `symbol("squashfs_fill_super")`; `"module:name"` looks in one module only (`symbol("squashfs:init_once")`, for a name that several modules define).
---@param name string
---@return address?
---@return string? err
function symbol(name) end

---Names the symbol that `addr` lies in, as a kernel backtrace does: `"name+0xoff"` for the kernel image, `"name+0xoff [module]"` for a loaded module (`"dummy_dev_init+0x10 [dummy]"`). The symbol is the nearest one at or below `addr`, in the kernel image (`_text` to `_end`) or in the block of memory (text, data, ...) of the module that holds `addr`. The second result is a table: `name`, `module` (nil for the kernel), `address` (the symbol's), `offset` (a number), `type` (the nm letter, such as `"T"`, or nil) and `text` (true when `addr` is code: the kernel's text or a module's). An address in neither the kernel image nor any listed module's memory gives `nil, err` with `err` saying "outside the kernel image": for a pointer that must lead to kernel code (a system-call table entry), a sign that it leads elsewhere, such as to a module hidden from the list.
---@param addr xascript.addrlike
---@return string?
---@return xascript.symbol_info|string err
function symbol_at(addr) end

---Returns the byte offset of `member` (a dotted path) in `struct` (a name, or a view: its type). Structs that only a loaded module defines are found in that module's BTF in memory. An unknown struct or member raises an error (a script bug, not a guest fault); probe with `has_member` when a member differs between kernels. A bitfield (`task_struct.in_execve`) has no byte offset: `offsetof` raises an error that says it is a bitfield, with its width and bit offset, while `has_member` is true for it.
---@param struct string|xascript.view
---@param member string
---@return number
function offsetof(struct, member) end

---Tells whether `struct` has `member` (a dotted path) in this kernel's layout: true for every member the layout has, bitfields included (for which `offsetof` raises, as they have no byte offset).
---@param struct string
---@param member string
---@return boolean
function has_member(struct, member) end

---Returns the size in bytes of `type` (`"module"`, `"struct list_head"`, a typedef name, or a view: its type's size). An unknown type raises an error.
---@param type string|xascript.view
---@return number
function sizeof(type) end

---Returns the address of the `struct` that contains `member` at `addr`, like the kernel's `container_of` macro.
---@param addr xascript.addrlike
---@param struct string
---@param member string
---@return address
function container_of(addr, struct, member) end

-- CPUs and per-cpu variables

---Returns the address of CPU `cpu`'s copy of the per-cpu variable `name` (a kernel or module symbol): `percpu("runqueues", 0)` is CPU 0's `struct rq`. `nil, err` when the symbol is unknown, is not a per-cpu variable, or `cpu` is not below the kernel's `nr_cpu_ids`.
---@param name string
---@param cpu integer
---@return address?
---@return string? err
function percpu(name, cpu) end

---Returns the CPU numbers of one of the kernel's CPU sets, in increasing order, as a list: `"online"` (the default: `cpu_online_mask`), `"possible"` (every CPU that may ever be brought up, each with its per-cpu area), `"present"` or `"active"`. A kernel built without SMP has CPU 0 only. `for _, cpu in ipairs(cpus()) do ... percpu("runqueues", cpu) ... end`.
---@param set? "online"|"possible"|"present"|"active"
---@return integer[]?
---@return string? err
function cpus(set) end

-- Walking kernel lists

---Walks the circular list whose `struct list_head` is at `head` (e.g. `symbol("modules")`), following `next` pointers until it is back at `head`. For each node it calls `fn(entry)` with the address of the containing `struct` (the node minus `offsetof(struct, member)`); with `struct` nil, `fn` gets the node itself. `fn` may return `false` to stop early. Returns the number of entries visited, or `nil, err` when a pointer cannot be read, the list revisits a node without returning to `head` (a cycle), or more than `limit` entries (default 100000) were seen; `err` names the address.
---@param head xascript.addrlike
---@param struct string?
---@param member string
---@param fn fun(entry: address): boolean?
---@param limit? integer
---@return integer? count
---@return string? err
function walk_list(head, struct, member, fn, limit) end

-- Process address spaces

---Opens the user address space of the process `pid`, found on the kernel's task list (a thread's id opens its process's address space, with the thread's `task` and `comm`). Returns `nil, err` when there is no such process, and for a kernel thread, which has no user address space (`err` says `kernel thread`). Fields: `pid`, `comm`, `task` (its `task_struct`), `mm`, `pgd` (the top-level table's kernel address) and `root` (its physical address).
---@param pid integer
---@return xascript.process?
---@return string? err
function process(pid) end

---Opens the user address space of the task whose `task_struct` is at kernel address `task` (as a walk of the task list yields them, or a view of it), like `process`. A typed view of a `task_struct` has the same as a method: `t:space()` (see `view`).
---@param task xascript.addrlike
---@return xascript.process?
---@return string? err
function process_of(task) end

-- Typed views of kernel structs

---Returns a view of the struct or union `type` (`"module"`, `"struct task_struct"`, a typedef name) at `addr`, or `nil, err` when `addr` is NULL or cannot be read. An unknown type raises an error. `addr:as(type)` is the same.
---@param type string
---@param addr xascript.addrlike
---@return xascript.view?
---@return string? err
function view(type, addr) end

---Reads member `path` of view `v` (`"name"`, `"mm.pgd"`, `"mem[0].size"`), following pointers to structs as indexing does, and returns what `v.a.b` would, or `nil, err` when a pointer on the way is NULL (the error names the member) or a read faults. A member the type does not have raises an error, as indexing does.
---@param v xascript.view
---@param path string
---@return any?
---@return string? err
function field(v, path) end

---Returns the value of constant `name` of enum `enum` (`enum("mod_mem_type", "MOD_TEXT")`); with `enum` nil or `""`, of any enum. An unknown enum or constant raises an error.
---@param enum string?
---@param name string
---@return number
function enum(enum, name) end

-- Iterating kernel containers

---Iterates a circular `struct list_head` list from its head, which is not an entry, in list order (`for e in list(symbol("modules"), "module", "list") do … end`), yielding a view of `type` for each entry: the node's address less `offsetof(type, member)` (`member` may be a path, `"node.node[0]"`); with `type` nil, the node's own address. `head` is an address or a view of the head. The walk is bounded (`limit`, default the run's list limit, 100000), refuses to visit a node twice, and yields only nodes whose link it could read. It ends early when the guest's links are corrupt: `walk:err()` then says why (the address and what was wrong), `nil` when it reached the end; `walk:count()` is the number of entries yielded.
---@param head xascript.addrlike
---@param type string?
---@param member string?
---@param limit? integer
---@return xascript.walk
function list(head, type, member, limit) end

---Iterates a `struct hlist_head` chain (`first`, then each node's `next` until NULL) (`for e in hlist(head, "pid", "...") do … end`), yielding a view of `type` for each entry: the node's address less `offsetof(type, member)` (`member` may be a path, `"node.node[0]"`); with `type` nil, the node's own address. `head` is an address or a view of the head. The walk is bounded (`limit`, default the run's list limit, 100000), refuses to visit a node twice, and yields only nodes whose link it could read. It ends early when the guest's links are corrupt: `walk:err()` then says why (the address and what was wrong), `nil` when it reached the end; `walk:count()` is the number of entries yielded.
---@param head xascript.addrlike
---@param type string?
---@param member string?
---@param limit? integer
---@return xascript.walk
function hlist(head, type, member, limit) end

---Iterates a `struct hlist_nulls_head` chain, which ends at an odd "nulls" marker; `walk:nulls()` is the marker's value once the walk ended (a hash bucket's index, where the kernel puts it) (`for e in hlist_nulls(bucket, "sock_common", "skc_nulls_node") do … end`), yielding a view of `type` for each entry: the node's address less `offsetof(type, member)` (`member` may be a path, `"node.node[0]"`); with `type` nil, the node's own address. `head` is an address or a view of the head. The walk is bounded (`limit`, default the run's list limit, 100000), refuses to visit a node twice, and yields only nodes whose link it could read. It ends early when the guest's links are corrupt: `walk:err()` then says why (the address and what was wrong), `nil` when it reached the end; `walk:count()` is the number of entries yielded.
---@param head xascript.addrlike
---@param type string?
---@param member string?
---@param limit? integer
---@return xascript.walk
function hlist_nulls(head, type, member, limit) end

---Iterates a red-black tree in order (leftmost first, as `rb_first`/`rb_next`) from its `struct rb_root` (or `rb_root_cached`); a path deeper than a red-black tree of `limit` nodes can be ends the walk (`for e in rbtree(root, "vmap_area", "rb_node") do … end`), yielding a view of `type` for each entry: the node's address less `offsetof(type, member)` (`member` may be a path, `"node.node[0]"`); with `type` nil, the node's own address. `head` is an address or a view of the head. The walk is bounded (`limit`, default the run's list limit, 100000), refuses to visit a node twice, and yields only nodes whose link it could read. It ends early when the guest's links are corrupt: `walk:err()` then says why (the address and what was wrong), `nil` when it reached the end; `walk:count()` is the number of entries yielded.
---@param head xascript.addrlike
---@param type string?
---@param member string?
---@param limit? integer
---@return xascript.walk
function rbtree(head, type, member, limit) end

---Iterates a NULL-terminated chain of structs of `type` linked through `member`, a pointer to the next struct's start (not to a list node), yielding a view of each: before Linux 6.1 a process's mappings, `for vma in chain(t.mm.mmap, "vm_area_struct", "vm_next") do … end`. `first` is the first struct (an address or a view; `nil` or NULL for an empty chain). Bounded (`limit`, default the run's list limit), cycle-safe, and yields only structs whose link it could read; `walk:err()` as for `list`.
---@param first xascript.addrlike?
---@param type string
---@param member string
---@param limit? integer
---@return xascript.walk
function chain(first, type, member, limit) end

---Iterates the present entries of the `struct xarray` at `xa` in index order, yielding `index, entry`: with `type`, entries (pointers) as views of `type`; without, as addresses. Value entries (odd: tagged integers, such as the page cache's shadow entries) are yielded as numbers. Bounded, cycle-safe and checked (each node's shift must fit its depth); `walk:err()` as for `list`.
---@param xa xascript.addrlike
---@param type? string
---@param limit? integer
---@return xascript.walk
function xarray(xa, type, limit) end

---Iterates a `struct idr` (the XArray inside it, `idr_rt`) in id order, yielding `id, entry` as `xarray` does, ids counted from the IDR's `idr_base`: `for nr, pid in idr(symbol("init_pid_ns"):as("pid_namespace").idr, "pid") do … end`.
---@param idr xascript.addrlike
---@param type? string
---@param limit? integer
---@return xascript.walk
function idr(idr, type, limit) end

---Iterates the entries of the `struct maple_tree` at `tree` (Linux 6.1 and later) in index order, yielding `entry, first, last`: with `type`, the entry (a pointer) as a view of `type`; without, as an address; `first` and `last` (addresses) are the range of indexes the entry is stored at, both included. A process's mappings: `for vma, first, last in maple(t.mm.mm_mt, "vm_area_struct") do … end` (each VMA at `vm_start` through `vm_end - 1`; before 6.1 the mappings are the list `mm->mmap` through `vm_next`, walked by `chain`; `p:vmas()` reads either). Reserved internal entries are skipped. Bounded (`limit` entries, 65536 nodes, 31 levels), cycle-safe and checked (node types, pivots within their parent's range, ascending ranges): `walk:err()` as for `list`, naming the node. The tree is read when the walk starts, up to `limit` entries.
---@param tree xascript.addrlike
---@param type? string
---@param limit? integer
---@return xascript.walk
function maple(tree, type, limit) end

-- The target

---Returns how the guest was opened and its kernel located, with fields `target` (the dump format), `paging` (`"4-level"`, `"5-level"`, `"PAE"`, ...), `root` (page-table root, an address), `root_source`, `banner`, `text_phys` (physical address of `_text`), `kaslr_virtual` and `kaslr_physical` (the KASLR offsets, addresses that wrap for negative values), `symbol_shift` (added to the symbol file's addresses), `symbols` (how many) and `notes` (findings, e.g. a CPU root that did not map the kernel). It is a plain table, a copy made for this call: `pairs` lists its fields, and changing it changes nothing else.
---@return xascript.guest_info
function guest_info() end

---Pauses a live guest so that memory holds still while the script reads it, and drops what was cached while it ran. A guest that is already paused (by the script, by `--pause` or by an operator) stays paused; xascript resumes at exit only what it paused itself. A dump never changes: there it does nothing and returns true.
---@return true?
---@return string? err
function pause() end

---Lets a live guest that xascript paused (`pause()`, `--pause`) run again, and drops what was cached while it was paused (its page tables may change). A pause that xascript did not take, such as an operator's, is left alone. Does nothing on a dump.
---@return true?
---@return string? err
function resume() end

---Calls `fn(...)` with the guest paused and resumes it afterwards, also when `fn` raises an error (which is then raised again). A guest that was already paused stays paused.
---@param fn fun(...): ...
---@param ... any
---@return any ...
function with_paused(fn, ...) end

---Drops everything cached from the guest, so that the next reads see it afresh: virtual-to-physical translations (the kernel's and every process's), and on a live target its mapped pages, pages that failed to map and a Xen PV guest's frame table. xascript does this by itself whenever it sees the guest stop or resume (its own `pause()`/`resume()`, or an operator's on QEMU); call it when the guest may have changed otherwise, such as a running guest polled in a loop. A dump never changes.
function flush_cache() end

-- Time

---Waits `seconds` (a number, fractions allowed, from 0 to 86400: at most a day; a negative, infinite or NaN number, or a longer wait, raises an error) without holding the guest paused. An interrupt (Ctrl-C) while waiting ends the script as an error would, and a guest paused by `--pause` is resumed; `pcall` cannot catch it and go on (no Lua code runs after an interrupt). What the script printed so far reaches its reader (a pipe, a file) before the wait.
---@param seconds number
function sleep(seconds) end

---Returns the time in seconds since the Unix epoch, with fractions (microseconds), for timestamps and for timing a script's own work.
---@return number
function now() end

-- Timers

---Calls `fn()` every `seconds` (fractions allowed, at least 0.001, at most a day) on the script's event loop, which runs once the script's last line is done, for as long as a timer or a watch holds it. Ticks missed while `fn` or another callback ran are dropped, not queued. `fn` may return `false` to stop its timer; an error in `fn` ends the script as an error in an event callback does. Returns a timer with `t:cancel()` and `t.interval`.
---@param seconds number
---@param fn fun(): boolean?
---@return xascript.timer
function every(seconds, fn) end

-- Watching the guest's disk

---Watches the folder (or file) at absolute `path` in the guest's file system and calls `fn(ev)` for each change, with `ev` a table: `op` (`"MKDIR"`, `"RMDIR"`, `"MKFILE"`, `"RMFILE"`, `"RENAME"`, and for watched files `"WRITE"`, `"TRUNCATE"`, `"CHMOD"`, `"CHOWN"`; `"ERROR"` when a folder cannot be read and `"LOST"` when the tracker fell behind and rescanned), `path`, `old_path` (RENAME), `inode`, `type` (`"file"`, `"dir"`, `"symlink"`, ...), `size`, `mode`, `uid`, `gid`, `links`, `target` (a symlink's), `hardlink` (true when an existing file got another name), `time` (when the write reached the tap, seconds since the epoch), `ctime` (the guest's own timestamp), `error`, `watch` (the watched path) and `watch_ended` (the watched folder was removed: no more events). `opts`: `recursive` (watch every folder below too), `files` (also WRITE/TRUNCATE/CHMOD/CHOWN of the files in the folder), `max_depth` (default 16), `max_entries` (default 1,000,000). A path that does not exist yet is watched from when it is created. Returns a watch with `w:close()` and `w.path`.
---@param path string
---@param fn fun(ev: xascript.disk_event)
---@param opts? xascript.watch_options
---@return xascript.watch
function on_disk_event(path, fn, opts) end

---Ends the event loop once the running callback returns: the script ends with status 0 and the disk is flushed and served until then.
function stop() end

-- Output

---Writes `record` (a table with string keys) as one line. With `--json` the line is a JSON object (JSON Lines: pipe it into `jq`); otherwise it is `key=value` pairs separated by spaces, each value but the last padded to the widest seen so far under its key (up to 32 characters), so that records of one shape line up in columns. A text value is bare when it is plain (printable, no space, quote, backslash or `=`) and a quoted, escaped string otherwise, so a name read from the guest cannot forge a line.
---
---Fields come in a stable order: `guest`, `time`, then the keys listed in `order` (an array of names; those the record lacks are skipped), then the other keys sorted. Values: numbers (integers without a fraction), strings, booleans, addresses (as `"0x…"` strings: exact where a JSON number would round), and tables: a table whose keys are 1..n is an array, any other table an object (an empty table is `{}`; integer and address keys become strings). JSON strings escape control characters and turn invalid UTF-8 into U+FFFD. Raises an error for a function or other userdata value, NaN or an infinity, a table that contains itself, nesting deeper than 32, or more than 2^20 values in one record; nothing of a record that fails is written.
---
---`guest` (the target's name: the `--dom` name or id, the `--qemu` socket, the dump file's base name; with only a disk, the `--disk` image's base name) is in every record when there is a target. `time` (when the record was written: RFC 3339 UTC with milliseconds, e.g. `2026-01-02T15:04:05.123Z`) is in every record when the guest is live (`--qemu`, `--dom`) or a disk is watched as it is written (`--nbd`, `--tapfifo`): that is when the monitor polls or watches, and a dump's records describe the moment the dump was taken, not the moment they were written. A script cannot set either field itself.
---@param record table<string, any>
---@param order? string[]
function emit(record, order) end

-- Hashes

---Returns the SHA-256 digest (FIPS 180-4) of string `s` as 64 lowercase hex digits, as `sha256sum` prints it: `sha256(assert(read_bytes(text, size)))`.
---@param s string
---@return string
function sha256(s) end

---Returns the CRC-32 of string `s` as a number in [0, 2^32): the IEEE 802.3 polynomial, as zlib's `crc32`, `cksum -a crc32b` and gzip compute it (`crc32("123456789")` is `0xcbf43926`). A checksum against accidents, not against a guest that forges it: use `sha256` for that.
---@param s string
---@return number
function crc32(s) end

-- Bit operations

---Bitwise and of all its arguments (at least one).
---@param x xascript.bitlike
---@param y xascript.bitlike
---@param ... any
---@return number|address
function bit.band(x, y, ...) end

---Bitwise or of all its arguments (at least one).
---@param x xascript.bitlike
---@param y xascript.bitlike
---@param ... any
---@return number|address
function bit.bor(x, y, ...) end

---Bitwise exclusive or of all its arguments (at least one).
---@param x xascript.bitlike
---@param y xascript.bitlike
---@param ... any
---@return number|address
function bit.bxor(x, y, ...) end

---Every bit of the 64-bit `x` flipped: `bit.bnot(0)` is the address `0xffffffffffffffff`, `bit.band(a, bit.bnot(0xfff))` clears the low 12 bits.
---@param x xascript.bitlike
---@return number|address
function bit.bnot(x) end

---`x` shifted left by `n` bits (a whole number from 0; 64 or more gives 0); the bits shifted past bit 63 are lost.
---@param x xascript.bitlike
---@param n integer
---@return number|address
function bit.shl(x, n) end

---`x` shifted right by `n` bits, zeros coming in at the top (a logical shift; `n` of 64 or more gives 0).
---@param x xascript.bitlike
---@param n integer
---@return number|address
function bit.shr(x, n) end

---`x` shifted right by `n` bits as a signed 64-bit value: bit 63 is copied in at the top (`n` of 64 or more gives 0 or all ones, by the sign).
---@param x xascript.bitlike
---@param n integer
---@return number|address
function bit.arshift(x, n) end

---Tells whether `x` and `mask` have a bit in common (`bit.band(x, mask) ~= 0`, which as a comparison of an address and a number would always be true).
---@param x xascript.bitlike
---@param mask xascript.bitlike
---@return boolean
function bit.test(x, mask) end

-- Other globals

---Describes the function `name` (its signature and doc, as docs/lua-api.md has them); without `name`, lists every function.
---@param name? string
function help(name) end
