package isf

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/xascript/xascript/vmi"
)

// FormatVersion is the ISF format Write produces: 6.2.0 is the first that
// marks anonymous members ("anonymous": true), which dwarf2json 0.6+ emits
// and Volatility flattens.
const FormatVersion = "6.2.0"

// maxDepth bounds every walk over type references in a loaded ISF (nested
// anonymous members, pointer/array descriptor chains). Real kernels need a
// handful of levels.
const maxDepth = 64

// maxOffset bounds computed offsets and sizes (1 TiB): anything larger is
// a hostile file, and the bound keeps products of counts from overflowing.
const maxOffset = 1 << 40

// The JSON model of the entries of an ISF that Load decodes. Numbers are
// json.Number so that 64-bit addresses and hostile values are parsed
// exactly and checked, not rounded through float64.

type metadataJSON struct {
	Format   string `json:"format"`
	Producer struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"producer"`
}

type baseTypeJSON struct {
	Size   json.Number `json:"size"`
	Signed bool        `json:"signed"`
	Kind   string      `json:"kind"`
	Endian string      `json:"endian"`
}

type symbolJSON struct {
	Address      json.Number     `json:"address"`
	Type         json.RawMessage `json:"type"`
	ConstantData string          `json:"constant_data"`
}

type userTypeJSON struct {
	Kind   string               `json:"kind"`
	Size   json.Number          `json:"size"`
	Fields map[string]fieldJSON `json:"fields"`
}

type fieldJSON struct {
	Type      *typeDesc   `json:"type"`
	Offset    json.Number `json:"offset"`
	Anonymous bool        `json:"anonymous"`
}

type enumJSON struct {
	Size      json.Number            `json:"size"`
	Base      string                 `json:"base"`
	Constants map[string]json.Number `json:"constants"`
}

// typeDesc is a type descriptor: how a member or symbol names its type.
type typeDesc struct {
	Kind        string      `json:"kind"`
	Name        string      `json:"name"`
	Subtype     *typeDesc   `json:"subtype"`
	Count       json.Number `json:"count"`
	BitPosition json.Number `json:"bit_position"`
	BitLength   json.Number `json:"bit_length"`
	Type        *typeDesc   `json:"type"`
}

// num parses a non-negative JSON integer no larger than maxOffset; what
// names the value in the error.
func num(n json.Number, what string) (uint64, error) {
	if n == "" {
		return 0, fmt.Errorf("%s is missing: %w", what, vmi.ErrFormat)
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil || v > maxOffset {
		return 0, fmt.Errorf("%s is %s, not an integer in [0, 2^40]: %w", what, n, vmi.ErrFormat)
	}
	return v, nil
}

// address parses a symbol address: any 64-bit value, written as an
// unsigned integer (dwarf2json) or, by some producers of 32-bit ISFs, as a
// negative one meaning the same bits.
func address(n json.Number) (uint64, bool) {
	if v, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return v, true
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return uint64(v), true
	}
	return 0, false
}
