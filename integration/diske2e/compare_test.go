package diske2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// The fixture is the serial log of a real run of the events scenario on an
// ext4 image attached to QEMU as a plain file (no tap).
func loadFixture(t *testing.T) *GuestLog {
	t.Helper()
	data, err := os.ReadFile("testdata/serial-events-ext4.log")
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGuest(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseGuestRealLog(t *testing.T) {
	g := loadFixture(t)
	if !g.Up || !g.Done || g.Mode != "events" || g.FS != "ext4" || len(g.Fails) != 0 {
		t.Fatalf("up %v done %v mode %q fs %q fails %q", g.Up, g.Done, g.Mode, g.FS, g.Fails)
	}
	if len(g.Ops) != 24+20000 {
		t.Fatalf("%d ops", len(g.Ops))
	}
	if s := fmt.Sprint(g.Ops[0], "|", g.Ops[9], "|", g.Ops[12], "|", g.Ops[len(g.Ops)-1]); s !=
		"step 1 MKDIR /root/foo|step 3 RENAME /root/dummy -> /root/dummy2|step 6 LINK /root/hl = /root/dummy2|step 13 RMFILE /root/big/f10000" {
		t.Errorf("ops: %s", s)
	}
}

func TestCompleteLines(t *testing.T) {
	for in, want := range map[string]string{"": "", "XA-SYNC": "", "a\nXA-SYNCED w1 4096": "a\n", "a\nb\n": "a\nb\n"} {
		if got := completeLines([]byte(in)); got != want {
			t.Errorf("completeLines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseGuestRejects(t *testing.T) {
	for _, bad := range []string{
		"XA-DID 1 MKDIR foo",
		"XA-DID 0 MKDIR /foo",
		"XA-DID 1 CHMOD /foo",
		"XA-DID 1 RENAME /a /b",
		"XA-DID 1 LINK /a = b",
		"XA-DID 1 MKFILE /a /b",
		"XA-DID-RANGE 1 MKFILE /f 1 99999999",
		"XA-DID-RANGE 1 RENAME /f 1 2",
		"XA-SYNCED w1 10 abc",
		"XA-FIG7 100 1 -5",
		"XA-DID 2 MKDIR /a\nXA-DID 1 MKDIR /b",
	} {
		if _, err := ParseGuest(bad); err == nil {
			t.Errorf("ParseGuest(%q) accepted it", bad)
		}
	}
}

var recursiveRoot = []Watch{{Path: "/root", Recursive: true}}

// perfect renders the events a tracker that follows the rule prints.
func perfect(want []Event) string {
	var b strings.Builder
	for _, e := range want {
		b.WriteString(e.Key() + "\n")
	}
	return b.String()
}

func TestExpected(t *testing.T) {
	g := loadFixture(t)
	want := Expected(g.Ops, recursiveRoot)
	// All but /other/new and /other/new/y.
	if len(want) != len(g.Ops)-2 {
		t.Fatalf("%d expected events for %d ops", len(want), len(g.Ops))
	}
	for _, e := range want {
		if strings.HasPrefix(e.Path, "/other") {
			t.Errorf("expected an event outside /root: %v", e)
		}
	}
	flat := Expected(g.Ops, []Watch{{Path: "/root"}})
	for _, e := range flat {
		if strings.Count(e.Path, "/") != 2 && !(e.Op == "RENAME" && strings.Count(e.New, "/") == 2) {
			t.Errorf("non-recursive watch expects %v", e)
		}
	}
	if len(flat) >= len(want) || len(flat) < 10 {
		t.Errorf("non-recursive: %d events", len(flat))
	}
}

func TestCompareAcceptsRule(t *testing.T) {
	g := loadFixture(t)
	want := Expected(g.Ops, recursiveRoot)
	strict := map[int]bool{1: true}
	if errs := Compare(want, ParseEvents(perfect(want)).List, strict); len(errs) != 0 {
		t.Fatalf("in guest order: %v", errs)
	}
	// Inside a step any order, and folders interleaved: reverse every step
	// but the strict one.
	var shuffled []Event
	for i := 0; i < len(want); {
		j := i
		for j < len(want) && want[j].Line == want[i].Line {
			j++
		}
		for k := range j - i {
			if want[i].Line == 1 { // the paper's step keeps its order
				shuffled = append(shuffled, want[i+k])
			} else {
				shuffled = append(shuffled, want[j-1-k])
			}
		}
		i = j
	}
	ev := ParseEvents("WRITE: /root/dummy\n" + perfect(shuffled) + "CHMOD: /root/keep\nsome banner\n")
	if ev.Ignored != 2 || len(ev.Untouched) != 1 || len(ev.Unknown) != 0 {
		t.Fatalf("ignored %d untouched %q unknown %q", ev.Ignored, ev.Untouched, ev.Unknown)
	}
	if errs := Compare(want, ev.List, strict); len(errs) != 0 {
		t.Fatalf("reversed steps: %v", errs)
	}
}

func TestCompareRejects(t *testing.T) {
	g := loadFixture(t)
	want := Expected(g.Ops, recursiveRoot)
	strict := map[int]bool{1: true}
	good := perfect(want)
	cases := map[string]string{
		"paper order": strings.Replace(good, "MKDIR: /root/foo\nMKFILE: /root/dummy\n", "MKFILE: /root/dummy\nMKDIR: /root/foo\n", 1),
		"missing":     strings.Replace(good, "MKFILE: /root/big/f5000\n", "", 1),
		"extra":       strings.Replace(good, "RMDIR: /root/a/b/c\n", "RMDIR: /root/a/b/c\nMKFILE: /root/keep\n", 1),
		"outside":     good + "MKDIR: /other/new\n",
		"duplicate":   strings.Replace(good, "RMFILE: /root/big/f1\n", "RMFILE: /root/big/f1\nRMFILE: /root/big/f1\n", 1),
		"steps swapped": strings.Replace(good, "RENAME: /root/dummy -> /root/dummy2\nRENAME: /root/foo -> /root/foo2\n",
			"RENAME: /root/foo -> /root/foo2\nRENAME: /root/dummy -> /root/dummy2\n", 1),
		"rename as two":                       strings.Replace(good, "RENAME: /root/dummy -> /root/dummy2\n", "RMFILE: /root/dummy\nMKFILE: /root/dummy2\n", 1),
		"link as mkfile":                      strings.Replace(good, "LINK: /root/hl\n", "MKFILE: /root/hl\n", 1),
		"late create":                         strings.Replace(strings.Replace(good, "MKFILE: /root/big/f7\n", "", 1), "RMFILE: /root/big/f1\n", "RMFILE: /root/big/f1\nMKFILE: /root/big/f7\n", 1),
		"cross-folder rename, one side wrong": strings.Replace(good, "RENAME: /root/a/b/c/deep -> /root/deep", "RENAME: /root/a/b/c/deep -> /root/deep2", 1),
	}
	for name, out := range cases {
		ev := ParseEvents(out)
		if errs := Compare(want, ev.List, strict); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %s", name, errs[0])
		}
	}
	if ev := ParseEvents("LOST: 12 events, rescanning\nRENAME: /a\nMKDIR: relative\n"); len(ev.Unknown) != 3 {
		t.Errorf("unknown lines: %q", ev.Unknown)
	}
}

func TestParseWatch(t *testing.T) {
	ws, err := ParseWatch(strings.Fields("/etc -r /root/ /x"))
	if err != nil || fmt.Sprint(ws) != "[{/etc false} {/root true} {/x true}]" {
		t.Fatalf("%v %v", ws, err)
	}
	for _, bad := range [][]string{nil, {"-r"}, {"root"}} {
		if _, err := ParseWatch(bad); err == nil {
			t.Errorf("ParseWatch(%q) accepted", bad)
		}
	}
}

func TestReplay(t *testing.T) {
	g := loadFixture(t)
	before := Tree{
		"/root": {Kind: 'd', Inode: 15}, "/root/bar": {Kind: 'f', Inode: 16}, "/root/keep": {Kind: 'f', Inode: 17},
		"/other": {Kind: 'd', Inode: 18}, "/etc": {Kind: 'd', Inode: 19}, "/etc/hostname": {Kind: 'f', Inode: 20},
		"/lost+found": {Kind: 'd', Inode: 11},
	}
	after, err := Replay(before, g.Ops)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p, n := range after {
		if strings.HasPrefix(p, "/root/") {
			names = append(names, fmt.Sprintf("%s:%c%s", p, n.Kind, n.Target))
		}
	}
	if got := strings.Join(sorted(names), " "); got !=
		"/root/a/b:d /root/a:d /root/big:d /root/deep:f /root/dummy2:f /root/foo2:d /root/hl:f /root/keep:f /root/sl:ldummy2" {
		t.Errorf("after: %s", got)
	}
	if after["/root/hl"].Inode != after["/root/dummy2"].Inode || after["/root/deep"].Inode == after["/root/dummy2"].Inode {
		t.Errorf("links: %v", after)
	}
	// The image as a good run leaves it: the model with other inode numbers.
	image := Tree{}
	for p, n := range after {
		n.Inode += 1000
		image[p] = n
	}
	if errs := CompareTrees(after, image); len(errs) != 0 {
		t.Fatal(errs)
	}
	broken := Tree{}
	for p, n := range image {
		broken[p] = n
	}
	hl := broken["/root/hl"]
	hl.Inode = 5
	broken["/root/hl"] = hl
	delete(broken, "/root/deep")
	broken["/root/extra"] = Node{Kind: 'f', Inode: 6}
	sl := broken["/root/sl"]
	sl.Target = "x"
	broken["/root/sl"] = sl
	if errs := CompareTrees(after, broken); len(errs) != 4 {
		t.Errorf("broken image: %q", errs)
	}
	if _, err := Replay(before, []Op{{Step: 1, Op: "RMDIR", Path: "/root"}}); err == nil {
		t.Error("rmdir of a full folder replayed")
	}
	if _, err := Replay(before, []Op{{Step: 1, Op: "MKFILE", Path: "/nowhere/x"}}); err == nil {
		t.Error("file in a missing folder replayed")
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
