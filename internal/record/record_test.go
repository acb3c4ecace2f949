package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func encode(t *testing.T, e *Encoder, r Record) string {
	t.Helper()
	out, err := e.Append(nil, r)
	if err != nil {
		t.Fatalf("Append(%v): %v", r, err)
	}
	return string(out)
}

// report is shaped like cmd/xascript's info and bench reports.
type report struct {
	Target  string   `json:"target"`
	Ranges  []string `json:"memory_ranges"`
	Empty   []string `json:"empty,omitempty"`
	CR3     string   `json:"cr3,omitempty"`
	Known   bool     `json:"cpu_state"`
	Count   int      `json:"symbols"`
	Big     uint64   `json:"big"`
	Rate    float64  `json:"rate"`
	Tiny    float64  `json:"tiny"`
	Huge    float64  `json:"huge"`
	Nested  inner    `json:"vmcoreinfo"`
	Skipped string   `json:"-"`
	Untag   int
	hidden  int
	Opt     map[string]int `json:"-"`
}

type inner struct {
	Found bool   `json:"found"`
	Where string `json:"where,omitempty"`
	N     int32  `json:"n"`
}

// TestFromStructMatchesEncodingJSON: the commands' reports moved from
// encoding/json to this encoder; their JSON must not change (apart from
// being one line), so encoding/json is the reference.
func TestFromStructMatchesEncodingJSON(t *testing.T) {
	for _, r := range []report{
		{Target: "raw image", Ranges: []string{"[0x0, 0x9fc00)", "a\"b\\c\n\td"}, Known: true, Count: 123456,
			Big: math.MaxUint64, Rate: 1234.5678, Tiny: 1.5e-9, Huge: 3e21, Nested: inner{Found: true, Where: "at 0x10", N: -7},
			Skipped: "x", Untag: 3, hidden: 4},
		{Rate: 0, Tiny: -0.25, Huge: 1e20},
		{Target: "ü \u00e9 \U0001F600"},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := FromStruct(&r)
		if err != nil {
			t.Fatal(err)
		}
		got := encode(t, &Encoder{JSON: true}, rec)
		if got != string(want)+"\n" {
			t.Errorf("FromStruct+JSON:\n got %s\nwant %s", got, want)
		}
	}
}

func TestJSONValues(t *testing.T) {
	r := Record{
		{"addr", Addr(0xffff888003a4b129)},
		{"zero", Addr(0)},
		{"list", List{int64(1), "two", true, nil, List{}, Record{}}},
		{"obj", Record{{"b", 2.5}, {"a", uint64(1) << 63}}},
	}
	got := encode(t, &Encoder{JSON: true}, r)
	want := `{"addr":"0xffff888003a4b129","zero":"0x0","list":[1,"two",true,null,[],{}],"obj":{"b":2.5,"a":9223372036854775808}}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("not valid JSON: %v", err)
	}
}

// TestJSONStringsAreSafe: a string from the guest (a task's comm, a module
// name) cannot end the line, drive a terminal, or make invalid JSON.
func TestJSONStringsAreSafe(t *testing.T) {
	hostile := "a\nb\rc\x1b[31md\x00e\x7f\xc2\x9b1m\xff\xfe\"\\\u2028z"
	got := encode(t, &Encoder{JSON: true}, Record{{"comm", hostile}})
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("record spans lines: %q", got)
	}
	for _, c := range got[:len(got)-1] {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			t.Errorf("control character %U written raw in %q", c, got)
		}
	}
	var back struct{ Comm string }
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("invalid JSON %q: %v", got, err)
	}
	// Each invalid byte is one U+FFFD; everything else comes back as it was.
	if want := strings.Replace(hostile, "\xff\xfe", "\ufffd\ufffd", 1); back.Comm != want {
		t.Errorf("round trip: got %q", back.Comm)
	}
}

func TestText(t *testing.T) {
	var e Encoder
	lines := []string{
		encode(t, &e, Record{{"pid", int64(1)}, {"comm", "systemd"}}),
		encode(t, &e, Record{{"pid", int64(1234)}, {"comm", "kworker/0:1H"}}),
		encode(t, &e, Record{{"pid", int64(7)}, {"comm", "sh"}}),
		encode(t, &e, Record{{"pid", int64(8)}, {"comm", "two words"}, {"addr", Addr(0x1000)}}),
		encode(t, &e, Record{{"pid", int64(9)}, {"comm", "\x1b[2J\n"}, {"addr", Addr(0x2000)}}),
		encode(t, &e, Record{{"obj", Record{{"k", "v w"}}}, {"list", List{1.5, "x"}}, {"empty", ""}}),
		encode(t, &e, Record{{"weird key", true}, {"k=v", nil}}),
	}
	want := []string{
		"pid=1 comm=systemd\n",
		"pid=1234 comm=kworker/0:1H\n", // the first line set pid's width to 1
		"pid=7    comm=sh\n",
		"pid=8    comm=\"two words\"  addr=0x1000\n",
		"pid=9    comm=\"\\x1b[2J\\n\"  addr=0x2000\n",
		"obj={\"k\":\"v w\"} list=[1.5,\"x\"] empty=\"\"\n",
		"\"weird key\"=true \"k=v\"=null\n",
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want[i])
		}
	}
}

// TestTextPadBound: one long value is written whole but does not push
// later records' columns out.
func TestTextPadBound(t *testing.T) {
	var e Encoder
	encode(t, &e, Record{{"a", strings.Repeat("x", MaxPad+1)}, {"b", "1"}})
	if got := encode(t, &e, Record{{"a", "y"}, {"b", "2"}}); got != "a=y b=2\n" {
		t.Errorf("got %q", got)
	}
}

func TestErrors(t *testing.T) {
	deep := Record{{"v", int64(1)}}
	for range MaxDepth {
		deep = Record{{"d", deep}}
	}
	deepList := List{int64(1)}
	for range MaxDepth {
		deepList = List{deepList}
	}
	for _, c := range []struct {
		name string
		r    Record
		want error
	}{
		{"NaN", Record{{"x", math.NaN()}}, ErrValue},
		{"Inf", Record{{"ok", int64(1)}, {"x", List{math.Inf(-1)}}}, ErrValue},
		{"chan", Record{{"x", make(chan int)}}, ErrValue},
		{"deep record", deep, ErrTooDeep},
		{"deep list", Record{{"l", deepList}}, ErrTooDeep},
	} {
		for _, js := range []bool{false, true} {
			e := &Encoder{JSON: js}
			prefix := []byte("kept")
			out, err := e.Append(prefix, c.r)
			if !errors.Is(err, c.want) {
				t.Errorf("%s (json %v): err %v, want %v", c.name, js, err, c.want)
			}
			if !bytes.Equal(out, prefix) {
				t.Errorf("%s (json %v): a failed record wrote %q", c.name, js, out)
			}
		}
	}
	// Exactly MaxDepth levels are fine.
	ok := Record{{"v", int64(1)}}
	for range MaxDepth - 1 {
		ok = Record{{"d", ok}}
	}
	if _, err := (&Encoder{JSON: true}).Append(nil, ok); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
}

func TestTextFailureKeepsWidths(t *testing.T) {
	var e Encoder
	if _, err := e.Append(nil, Record{{"a", "0123456789"}, {"b", math.NaN()}}); err == nil {
		t.Fatal("NaN accepted")
	}
	if got := encode(t, &e, Record{{"a", "x"}, {"b", "y"}}); got != "a=x b=y\n" {
		t.Errorf("a failed record changed the columns: %q", got)
	}
}
