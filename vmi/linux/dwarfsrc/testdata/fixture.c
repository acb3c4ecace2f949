/* The layouts dwarfsrc's unit tests read back from DWARF: the shapes the
 * kernel's structs use (nested structs, anonymous unions and structs,
 * arrays of structs and of arrays, typedefs, qualifiers, bitfields,
 * flexible arrays). make-fixtures.sh builds it; expected.c states what the
 * compiler says the offsets are. */
#include "fixture.h"

/* Referenced so that every type is emitted. */
struct module the_module;
struct task_struct init_task;
union both a_union;
module_t *a_typedef;
matrix_t a_matrix;
row_t a_row;
