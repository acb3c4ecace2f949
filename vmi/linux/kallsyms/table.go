package kallsyms

import "github.com/xascript/xascript/vmi/linux/symbols"

// Table returns the symbols as a symbols.Table (with its hash index for
// fast Lookup), named name in messages.
func (r *Result) Table(name string) *symbols.Table {
	list := make([]symbols.Symbol, len(r.Symbols))
	for i, s := range r.Symbols {
		list[i] = symbols.Symbol{Addr: s.Addr, Type: s.Type, Name: s.Name}
	}
	return symbols.FromList(name, list)
}
