package diske2e

import (
	"fmt"
	"strconv"
	"strings"
)

// Op is one operation the guest made, as it printed it.
type Op struct {
	Step   int
	Op     string // MKDIR MKFILE RMFILE RMDIR RENAME LINK SYMLINK
	Path   string // RENAME: the old path
	New    string // RENAME: the new path
	Target string // LINK: the existing name; SYMLINK: the link text
}

func (o Op) String() string {
	switch o.Op {
	case "RENAME":
		return fmt.Sprintf("step %d RENAME %s -> %s", o.Step, o.Path, o.New)
	case "LINK", "SYMLINK":
		return fmt.Sprintf("step %d %s %s = %s", o.Step, o.Op, o.Path, o.Target)
	}
	return fmt.Sprintf("step %d %s %s", o.Step, o.Op, o.Path)
}

// Synced is a file the guest had fsynced (with its folder) when it printed it.
type Synced struct {
	Name   string
	Size   int64
	SHA256 string
}

// Fig7Run is one timed run of the Figure 7 benchmark.
type Fig7Run struct {
	N, Run int
	Nanos  int64
}

// GuestLog is what the disk guest printed on its serial console.
type GuestLog struct {
	Up       bool
	Mode, FS string
	UpTime   string // the guest's /proc/uptime when the disk was mounted
	Ops      []Op
	Fails    []string
	Done     bool
	Writing  bool
	Synced   []Synced
	IOErr    []string
	Fig7     []Fig7Run
	DDMiB    int
	DDNanos  int64
}

// maxRange bounds an XA-DID-RANGE line: the guest's own output is input to
// the host too.
const maxRange = 1 << 20

var opArity = map[string]bool{"MKDIR": true, "MKFILE": true, "RMFILE": true, "RMDIR": true}

// ParseGuest reads the guest's serial log. Lines without an XA- marker
// (kernel messages) are skipped; a malformed marker line is an error.
func ParseGuest(text string) (*GuestLog, error) {
	g := &GuestLog{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "XA-") {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("serial line %d %q: %s", i+1, line, why)
		}
		switch f[0] {
		case "XA-UP":
			if len(f) != 4 {
				return nil, bad("want XA-UP MODE FS UPTIME")
			}
			g.Up, g.Mode, g.FS, g.UpTime = true, f[1], f[2], f[3]
		case "XA-DONE":
			g.Done = true
		case "XA-FAIL":
			g.Fails = append(g.Fails, line)
		case "XA-WRITING":
			g.Writing = true
		case "XA-IOERR":
			g.IOErr = append(g.IOErr, line)
		case "XA-DID":
			op, err := parseDid(f[1:])
			if err != nil {
				return nil, bad(err.Error())
			}
			g.Ops = append(g.Ops, op)
		case "XA-DID-RANGE":
			if len(f) != 6 || !opArity[f[2]] {
				return nil, bad("want XA-DID-RANGE STEP MKDIR|MKFILE|RMFILE|RMDIR PREFIX FIRST LAST")
			}
			step, e1 := strconv.Atoi(f[1])
			first, e2 := strconv.Atoi(f[4])
			last, e3 := strconv.Atoi(f[5])
			if e1 != nil || e2 != nil || e3 != nil || step < 1 || first < 0 || last < first || last-first >= maxRange {
				return nil, bad("bad step or range")
			}
			if !strings.HasPrefix(f[3], "/") {
				return nil, bad("path not absolute")
			}
			for n := first; n <= last; n++ {
				g.Ops = append(g.Ops, Op{Step: step, Op: f[2], Path: f[3] + strconv.Itoa(n)})
			}
		case "XA-SYNCED":
			if len(f) != 4 || len(f[3]) != 64 {
				return nil, bad("want XA-SYNCED NAME SIZE SHA256")
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 || strings.ContainsAny(f[1], "/\"") {
				return nil, bad("bad size or name")
			}
			g.Synced = append(g.Synced, Synced{Name: f[1], Size: size, SHA256: f[3]})
		case "XA-FIG7":
			if len(f) != 4 {
				return nil, bad("want XA-FIG7 N RUN NANOS")
			}
			n, e1 := strconv.Atoi(f[1])
			r, e2 := strconv.Atoi(f[2])
			ns, e3 := strconv.ParseInt(f[3], 10, 64)
			if e1 != nil || e2 != nil || e3 != nil || ns <= 0 {
				return nil, bad("bad numbers")
			}
			g.Fig7 = append(g.Fig7, Fig7Run{N: n, Run: r, Nanos: ns})
		case "XA-DD":
			if len(f) != 3 {
				return nil, bad("want XA-DD MIB NANOS")
			}
			mib, e1 := strconv.Atoi(f[1])
			ns, e2 := strconv.ParseInt(f[2], 10, 64)
			if e1 != nil || e2 != nil || ns <= 0 {
				return nil, bad("bad numbers")
			}
			g.DDMiB, g.DDNanos = mib, ns
		case "XA-INSMOD-FAIL":
			g.Fails = append(g.Fails, line)
		}
	}
	for i := 1; i < len(g.Ops); i++ {
		if g.Ops[i].Step < g.Ops[i-1].Step {
			return nil, fmt.Errorf("guest op %q comes after %q: steps go backwards", g.Ops[i], g.Ops[i-1])
		}
	}
	return g, nil
}

// parseDid reads the fields after XA-DID: STEP OP PATH [-> NEW | = TARGET].
func parseDid(f []string) (Op, error) {
	if len(f) < 3 {
		return Op{}, fmt.Errorf("want XA-DID STEP OP PATH")
	}
	step, err := strconv.Atoi(f[0])
	if err != nil || step < 1 {
		return Op{}, fmt.Errorf("bad step %q", f[0])
	}
	op := Op{Step: step, Op: f[1], Path: f[2]}
	if !strings.HasPrefix(op.Path, "/") {
		return Op{}, fmt.Errorf("path %q not absolute", op.Path)
	}
	switch {
	case opArity[op.Op]:
		if len(f) != 3 {
			return Op{}, fmt.Errorf("%s takes one path", op.Op)
		}
	case op.Op == "RENAME":
		if len(f) != 5 || f[3] != "->" || !strings.HasPrefix(f[4], "/") {
			return Op{}, fmt.Errorf("want RENAME OLD -> NEW")
		}
		op.New = f[4]
	case op.Op == "LINK" || op.Op == "SYMLINK":
		if len(f) != 5 || f[3] != "=" {
			return Op{}, fmt.Errorf("want %s PATH = TARGET", op.Op)
		}
		op.Target = f[4]
		if op.Op == "LINK" && !strings.HasPrefix(op.Target, "/") {
			return Op{}, fmt.Errorf("LINK target %q not absolute", op.Target)
		}
	default:
		return Op{}, fmt.Errorf("unknown op %q", op.Op)
	}
	return op, nil
}

// completeLines is the log up to its last newline: the line after it is
// still being printed (or was cut off by a kill) and is not parsed.
func completeLines(data []byte) string {
	if i := strings.LastIndexByte(string(data), '\n'); i >= 0 {
		return string(data[:i+1])
	}
	return ""
}
