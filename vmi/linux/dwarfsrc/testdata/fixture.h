#include <stddef.h>

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;
typedef int pid_t;

struct list_head {
	struct list_head *next, *prev;
};

struct layout {
	void *base;
	unsigned int size;
	unsigned int text_size;
};

typedef struct {
	int counter;
} atomic_t;

enum module_state { MODULE_STATE_LIVE, MODULE_STATE_GOING = 1000 };

typedef int row_t[4];
typedef row_t matrix_t[3];

struct module;
typedef struct module module_t;

struct module {
	enum module_state state;
	struct list_head list;
	char name[56];
	struct layout core_layout;
	struct layout layouts[4];
	union {
		u64 raw;
		struct {
			u32 lo, hi;
		};
	};
	struct {
		atomic_t refcnt;
		unsigned int flags : 3;
		unsigned int mode : 5;
		unsigned int wide : 20;
		u8 after_bits;
	};
	int grid[3][4];
	matrix_t typed_grid;
	row_t rows[2];
	const volatile u64 cv;
	module_t *self;
	struct task_struct *owner;
	void (*init)(void);
	_Bool live;
	char zero[0];
	long tail[];
};

struct task_struct {
	volatile long state;
	struct list_head tasks;
	pid_t pid;
	struct {
		struct {
			union {
				u8 depth;
				u64 wide;
			};
		} inner;
	} outer;
	char comm[16];
};

union both {
	u8 b;
	u32 w;
	u64 q;
	struct list_head l;
};
