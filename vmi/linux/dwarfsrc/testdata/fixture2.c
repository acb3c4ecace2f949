/* A second compile unit, linked first: it only declares struct module, so
 * the index must take the complete definition from the other unit, and
 * lookups through modref_t must find it there. struct only_here exists in
 * this unit alone. */
struct module;
typedef struct module modref_t;
modref_t *a_declared_ref;

struct only_here {
	int a;
	char b[3];
	long long c;
};
struct only_here only_here_v;
