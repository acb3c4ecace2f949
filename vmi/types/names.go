package types

import (
	"slices"
	"strings"
)

// CanonicalName canonicalises a base type name to the spelling GCC's DWARF
// and BTF use ("unsigned long" -> "long unsigned int", "signed" -> "int",
// "unsigned char" stays, "long long unsigned" -> "long long unsigned int").
// Other names (typedefs, "struct x") come back with whitespace normalised.
func CanonicalName(name string) string {
	words := strings.Fields(name)
	var signed, unsigned, short, long, intW, char, boolW, float, double, i128 int
	for _, w := range words {
		switch w {
		case "signed":
			signed++
		case "unsigned":
			unsigned++
		case "short":
			short++
		case "long":
			long++
		case "int":
			intW++
		case "char":
			char++
		case "_Bool":
			boolW++
		case "float":
			float++
		case "double":
			double++
		case "__int128":
			i128++
		default:
			return strings.Join(words, " ")
		}
	}
	joined := strings.Join(words, " ")
	if len(words) == 0 {
		return ""
	}
	if signed+unsigned > 1 || short > 1 || long > 2 || intW > 1 || char+boolW+float+double+i128 > 1 ||
		(short > 0 && long > 0) {
		return joined // not a C base type: leave it alone
	}
	u := unsigned > 0
	switch {
	case boolW > 0:
		return "_Bool"
	case float > 0:
		return "float"
	case double > 0:
		if long > 0 {
			return "long double"
		}
		return "double"
	case char > 0:
		switch {
		case u:
			return "unsigned char"
		case signed > 0:
			return "signed char"
		}
		return "char"
	case i128 > 0:
		if u {
			return "__int128 unsigned"
		}
		return "__int128"
	}
	var b strings.Builder
	switch {
	case short > 0:
		b.WriteString("short ")
	case long == 2:
		b.WriteString("long long ")
	case long == 1:
		b.WriteString("long ")
	}
	if u {
		b.WriteString("unsigned ")
	}
	b.WriteString("int")
	return b.String()
}

func sortStrings(s []string) { slices.Sort(s) }
