/* Prints, at compile time, what the compiler says the fixture's offsets and
 * sizes are: each OFF/SIZE becomes a line "@@ <what> <type> [path] <value>"
 * in the assembly, as the kernel's asm-offsets.c does. Nothing is linked or
 * run, so -m32 works without a 32-bit C library. */
#include "fixture.h"

#define OFF(type, path) __asm__ volatile("\n@@ offsetof " #type " " #path " %c0" ::"i"(offsetof(type, path)))
#define SIZE(type) __asm__ volatile("\n@@ sizeof " #type " %c0" ::"i"(sizeof(type)))

void expected(void)
{
	OFF(struct module, state);
	OFF(struct module, list);
	OFF(struct module, list.next);
	OFF(struct module, list.prev);
	OFF(struct module, name);
	OFF(struct module, name[7]);
	OFF(struct module, core_layout);
	OFF(struct module, core_layout.size);
	OFF(struct module, core_layout.text_size);
	OFF(struct module, layouts[0]);
	OFF(struct module, layouts[2].base);
	OFF(struct module, layouts[3].text_size);
	OFF(struct module, raw);
	OFF(struct module, lo);
	OFF(struct module, hi);
	OFF(struct module, refcnt);
	OFF(struct module, refcnt.counter);
	OFF(struct module, after_bits);
	OFF(struct module, grid);
	OFF(struct module, grid[0][3]);
	OFF(struct module, grid[1]);
	OFF(struct module, grid[2][1]);
	OFF(struct module, typed_grid[2][3]);
	OFF(struct module, rows[1][2]);
	OFF(struct module, cv);
	OFF(struct module, self);
	OFF(struct module, owner);
	OFF(struct module, init);
	OFF(struct module, live);
	OFF(struct module, zero);
	OFF(struct module, tail);
	OFF(struct module, tail[5]);
	OFF(module_t, name);
	OFF(struct task_struct, state);
	OFF(struct task_struct, tasks);
	OFF(struct task_struct, tasks.prev);
	OFF(struct task_struct, pid);
	OFF(struct task_struct, outer.inner.depth);
	OFF(struct task_struct, outer.inner.wide);
	OFF(struct task_struct, comm);
	OFF(union both, w);
	OFF(union both, l.prev);
	OFF(struct only_here, c);
	SIZE(struct module);
	SIZE(struct task_struct);
	SIZE(struct list_head);
	SIZE(struct layout);
	SIZE(union both);
	SIZE(atomic_t);
	SIZE(module_t);
	SIZE(u64);
	SIZE(u32);
	SIZE(pid_t);
	SIZE(matrix_t);
	SIZE(row_t);
	SIZE(enum module_state);
	SIZE(struct only_here);
}
