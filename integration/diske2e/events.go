package diske2e

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Event is one line of the tap's event output.
type Event struct {
	Op   string
	Path string // RENAME: the old path
	New  string // RENAME: the new path
	Line int
}

// Key is the event's text as the comparison sees it ("MKDIR: /root/foo").
func (e Event) Key() string {
	if e.Op == "RENAME" {
		return "RENAME: " + e.Path + " -> " + e.New
	}
	return e.Op + ": " + e.Path
}

// namespaceOps are compared; attributeOps are ignored (the guest does not
// list them); any other OP fails.
var (
	namespaceOps = map[string]bool{"MKDIR": true, "MKFILE": true, "RMFILE": true, "RMDIR": true,
		"RENAME": true, "LINK": true, "SYMLINK": true}
	attributeOps = map[string]bool{"WRITE": true, "TRUNCATE": true, "CHMOD": true, "CHOWN": true}
	eventLine    = regexp.MustCompile(`^([A-Z][A-Z_]*): (.*)$`)
)

// Events is the parsed output of the tap.
type Events struct {
	List      []Event
	Ignored   int      // attribute events
	Unknown   []string // "OP: ..." lines of any other OP, and malformed ones
	Untouched []string // lines that are not events at all
}

// ParseEvents reads the script's stdout.
func ParseEvents(out string) *Events {
	ev := &Events{}
	for i, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		m := eventLine.FindStringSubmatch(line)
		if m == nil {
			ev.Untouched = append(ev.Untouched, line)
			continue
		}
		op, rest := m[1], m[2]
		switch {
		case attributeOps[op]:
			ev.Ignored++
		case op == "RENAME":
			old, nw, ok := strings.Cut(rest, " -> ")
			if !ok || !strings.HasPrefix(old, "/") || !strings.HasPrefix(nw, "/") {
				ev.Unknown = append(ev.Unknown, line)
				continue
			}
			ev.List = append(ev.List, Event{Op: op, Path: old, New: nw, Line: i + 1})
		case namespaceOps[op]:
			if !strings.HasPrefix(rest, "/") || strings.Contains(rest, " -> ") {
				ev.Unknown = append(ev.Unknown, line)
				continue
			}
			ev.List = append(ev.List, Event{Op: op, Path: rest, Line: i + 1})
		default:
			ev.Unknown = append(ev.Unknown, line)
		}
	}
	return ev
}

// Watch is one watched folder.
type Watch struct {
	Path      string
	Recursive bool
}

// ParseWatch reads XA_DISK_WATCH-style script arguments: "-r" makes the
// folders after it recursive.
func ParseWatch(args []string) ([]Watch, error) {
	var ws []Watch
	rec := false
	for _, a := range args {
		switch {
		case a == "-r" || a == "--recursive":
			rec = true
		case strings.HasPrefix(a, "/"):
			ws = append(ws, Watch{Path: path.Clean(a), Recursive: rec})
		default:
			return nil, fmt.Errorf("watch argument %q: want -r or an absolute path", a)
		}
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("no watched folder in %q", args)
	}
	return ws, nil
}

func watched(ws []Watch, p string) bool {
	dir := path.Dir(p)
	for _, w := range ws {
		if dir == w.Path || (w.Recursive && strings.HasPrefix(dir, w.Path+"/")) {
			return true
		}
		if w.Recursive && w.Path == "/" {
			return true
		}
	}
	return false
}

// Expected is the events the guest's ops call for, each with its step,
// under the rule in the package doc.
func Expected(ops []Op, ws []Watch) []Event {
	var out []Event
	for _, o := range ops {
		if !watched(ws, o.Path) && !(o.Op == "RENAME" && watched(ws, o.New)) {
			continue
		}
		e := Event{Op: o.Op, Path: o.Path, Line: o.Step}
		if o.Op == "RENAME" {
			e.New = o.New
		}
		out = append(out, e)
	}
	return out
}

func folders(e Event) []string {
	d := []string{path.Dir(e.Path)}
	if e.Op == "RENAME" && path.Dir(e.New) != d[0] {
		d = append(d, path.Dir(e.New))
	}
	return d
}

// Compare checks the tap's events against the expected ones (Expected;
// their Line holds the step) under the package doc's rule; strict names the
// steps whose order inside the step must be kept too. It returns every
// mismatch found, at most a few per folder.
func Compare(want []Event, got []Event, strict map[int]bool) []string {
	type item struct {
		key  string
		step int
	}
	wantBy := map[string][]item{}
	gotBy := map[string][]string{}
	for _, e := range want {
		for _, d := range folders(e) {
			wantBy[d] = append(wantBy[d], item{e.Key(), e.Line})
		}
	}
	for _, e := range got {
		for _, d := range folders(e) {
			gotBy[d] = append(gotBy[d], e.Key())
		}
	}
	var dirs []string
	for d := range wantBy {
		dirs = append(dirs, d)
	}
	for d := range gotBy {
		if _, ok := wantBy[d]; !ok {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	var errs []string
	for _, d := range dirs {
		w, g := wantBy[d], gotBy[d]
		pos := 0
		for i := 0; i < len(w); {
			j := i
			for j < len(w) && w[j].step == w[i].step {
				j++
			}
			step := w[i].step
			var wk []string
			for _, it := range w[i:j] {
				wk = append(wk, it.key)
			}
			end := min(pos+len(wk), len(g))
			gk := g[pos:end]
			if strict[step] {
				if strings.Join(wk, "\n") != strings.Join(gk, "\n") {
					errs = append(errs, fmt.Sprintf("folder %s step %d (order kept): want %q, got %q", d, step, wk, gk))
				}
			} else if missing, extra := multisetDiff(wk, gk); len(missing)+len(extra) > 0 {
				errs = append(errs, fmt.Sprintf("folder %s step %d: %d events expected, %d in their place; missing %s; unexpected %s",
					d, step, len(wk), len(gk), sample(missing), sample(extra)))
			}
			pos = end
			i = j
		}
		if pos < len(g) {
			errs = append(errs, fmt.Sprintf("folder %s: %d events after the guest's last op there: %s", d, len(g)-pos, sample(g[pos:])))
		}
	}
	if len(want) != len(got) && len(errs) == 0 {
		// Cannot happen when every event has a folder; kept as a guard.
		errs = append(errs, fmt.Sprintf("%d events expected, %d reported", len(want), len(got)))
	}
	return errs
}

func multisetDiff(want, got []string) (missing, extra []string) {
	n := map[string]int{}
	for _, k := range want {
		n[k]++
	}
	for _, k := range got {
		n[k]--
	}
	for _, k := range want {
		if n[k] > 0 {
			missing = append(missing, k)
			n[k]--
		}
	}
	for _, k := range got {
		if n[k] < 0 {
			extra = append(extra, k)
			n[k]++
		}
	}
	return missing, extra
}

func sample(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	if len(s) > 5 {
		return fmt.Sprintf("%q and %d more", s[:5], len(s)-5)
	}
	return fmt.Sprintf("%q", s)
}
