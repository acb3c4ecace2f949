package vmi

// SymbolInfo is what a reverse symbol lookup finds for an address: the
// symbol it lies in (kernel or module) and where.
type SymbolInfo struct {
	Name   string // the symbol's name
	Module string // the module that defines it; "" for the kernel image
	Addr   uint64 // the symbol's run-time address
	Offset uint64 // the looked-up address minus Addr
	Type   byte   // nm type letter ('T', 't', 'D', ...), 0 when unknown
	// Text: the address lies in code, the kernel's text (_stext-_etext,
	// _sinittext-_einittext) or a module's text; false for data.
	Text bool
}
