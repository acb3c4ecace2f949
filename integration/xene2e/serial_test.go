package xene2e

import (
	"os"
	"strings"
	"testing"
)

var wantMods = []string{"isofs", "cdrom", "loop", "tun", "veth", "nlmon", "ifb", "dummy", "crc_itu_t", "crc7"}

// The fixture is the serial log of a real run made before xascript had
// --dom: Xen and both domUs came up, every xascript --dom command failed
// with a usage error.
func TestParseRealLog(t *testing.T) {
	data, err := os.ReadFile("testdata/serial-no-dom-flag.log")
	if err != nil {
		t.Fatal(err)
	}
	l := Parse(string(data))
	if !l.XenSeen || !l.Dom0Done || len(l.Dom0Fail) != 0 {
		t.Fatalf("XenSeen %v Dom0Done %v Dom0Fail %v", l.XenSeen, l.Dom0Done, l.Dom0Fail)
	}
	if info := strings.Join(l.Sections["DOM0INFO"], "\n"); !strings.Contains(info, "privcmd") {
		t.Errorf("DOM0INFO section: %q", info)
	}
	for name, id := range map[string]string{"xa-pv": "1", "xa-pvh": "2"} {
		mods, err := CheckDomU(l, name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(mods, ",") != strings.Join(wantMods, ",") || l.DomUs[name].ID != id {
			t.Errorf("%s: id %s modules %v", name, l.DomUs[name].ID, mods)
		}
		cmds := l.CommandsFor(name)
		var labels []string
		for _, c := range cmds {
			labels = append(labels, c.Label)
			if !c.Done {
				t.Errorf("%s %s not done", name, c.Label)
			}
		}
		if got := strings.Join(labels, " "); got != "help lkm-name lkm-id paused-state lkm-paused-name lkm-paused-id info" {
			t.Errorf("%s commands: %s", name, got)
		}
		help := cmds[0]
		if err := CheckCommand(help, id, mods); err != nil || len(help.Stdout) != 1 || !strings.HasPrefix(help.Stdout[0], "xascript runs") {
			t.Errorf("help: %v %q", err, help.Stdout)
		}
		lkm := cmds[1]
		if lkm.Argv != "xascript /xa/scripts/examples/lkm.lua --dom "+name || lkm.RC != 2 ||
			len(lkm.Stdout) != 0 || !strings.Contains(strings.Join(lkm.Stderr, "\n"), "unknown flag: --dom") {
			t.Errorf("lkm-name: %+v", lkm)
		}
		if err := CheckCommand(lkm, id, mods); err == nil || !strings.Contains(err.Error(), "exited with status 2") {
			t.Errorf("CheckCommand(lkm-name) = %v", err)
		}
	}
	if len(l.Times) == 0 || l.Times[0][0] != "dom0-init" {
		t.Errorf("times %v", l.Times)
	}
}

func TestParseEdgeCases(t *testing.T) {
	log := strings.Join([]string{
		"junk before",
		"@@XA-BEGIN-DOMU a@@",
		"[ 1.0] kernel noise",
		"@@XA-BEGIN-MODULES@@",
		"m1 16384 0 - Live 0xffffffffc0000000",
		"m2 16384 0 - Live 0xffffffffc0001000",
		"@@XA-END-MODULES@@",
		"@@XA-READY@@",
		"@@XA-END-DOMU@@",
		"@@XA-DOMID a 7@@",
		"@@XA-BEGIN-CMD a lkm-ok@@",
		"@@XA-ARGV xascript lkm.lua --dom a --json@@",
		`{"guest":"a","time":"2026-01-02T03:04:05.678Z","name":"m1"}`,
		"(XEN) a line of Xen's own in the middle",
		`{"guest":"7","time":"2026-01-02T03:04:05.678Z","name":"m2"}` + "\r",
		"@@XA-STDERR@@",
		"@@XA-END-CMD a lkm-ok rc=0 secs=0.50@@",
		"@@XA-BEGIN-CMD a lkm-wrong@@",
		"@@XA-ARGV xascript lkm.lua --dom 7 --json@@",
		`{"guest":"7","time":"2026-01-02T03:04:05.678Z","name":"m2"}`,
		`{"guest":"7","time":"2026-01-02T03:04:05.678Z","name":"m1"}`,
		"@@XA-STDERR@@",
		"@@XA-END-CMD a lkm-wrong rc=0 secs=0.50@@",
		"@@XA-BEGIN-CMD a lkm-cut@@",
		"@@XA-ARGV xascript lkm.lua --dom 7 --json@@",
		`{"guest":"7","time":"2026-01-02T03:04:05.678Z","name":"m1"}`,
		"@@XA-DOMU-FAIL b no READY after 150s@@",
		"@@XA-NOTE xl domid d failed once: oops@@",
		"@@XA-DOMU-FAIL d domain is gone (xl domid: oops)@@",
		"@@XA-BEGIN-XLDMESG d try 1@@",
		"(XEN) d9v0 triple fault",
		"@@XA-END-XLDMESG@@",
		"@@XA-BEGIN-FAILED-CONSOLE d try 1@@",
		"##XA-BEGIN-MODULES##",
		"@@XA-END-FAILED-CONSOLE@@",
		"@@XA-DOMU-RETRY d@@",
		"@@XA-BEGIN-DOMU d@@",
		"@@XA-BEGIN-MODULES@@",
		"m3 16384 0 - Live 0xffffffffc0201000",
		"m4 16384 0 - Live 0xffffffffc0201000",
		"m5 16384 0 - Live 0xffffffffc0201000",
		"m6 16384 0 - Live 0xffffffffc0201000",
		"m7 16384 0 - Live 0xffffffffc0201000",
		"m8 16384 0 - Live 0xffffffffc0201000",
		"@@XA-END-MODULES@@",
		"@@XA-READY@@",
		"@@XA-END-DOMU@@",
		"@@XA-DOMID d 9@@",
		"@@XA-DOM0-FAIL xenstored@@",
	}, "\n")
	l := Parse(log)
	d := l.DomUs["a"]
	mods, ok := d.Modules()
	if !ok || strings.Join(mods, ",") != "m1,m2" || d.ID != "7" {
		t.Fatalf("domU a: %v %v %q", mods, ok, d.ID)
	}
	cmds := l.CommandsFor("a")
	if len(cmds) != 3 {
		t.Fatalf("%d commands", len(cmds))
	}
	if err := CheckCommand(cmds[0], "7", mods); err != nil {
		t.Errorf("lkm-ok: %v", err)
	}
	if err := CheckCommand(cmds[1], "7", mods); err == nil || !strings.Contains(err.Error(), "/proc/modules lists 2") {
		t.Errorf("lkm-wrong: %v", err)
	}
	if err := CheckCommand(cmds[2], "7", mods); err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("lkm-cut: %v", err)
	}
	if _, err := CheckDomU(l, "b"); err == nil || !strings.Contains(err.Error(), "no READY after 150s") {
		t.Errorf("domU b: %v", err)
	}
	// A boot that failed and was retried counts as the retry's outcome.
	if mods, err := CheckDomU(l, "d"); err != nil || strings.Join(mods, ",") != "m3,m4,m5,m6,m7,m8" || len(l.DomUs["d"].Retried) != 1 {
		t.Errorf("retried domU d: %v %v, retried %v", mods, err, l.DomUs["d"].Retried)
	}
	if _, err := CheckDomU(l, "c"); err == nil {
		t.Error("domU c: no error")
	}
	if l.Dom0Done || len(l.Dom0Fail) != 1 || l.Dom0Fail[0] != "xenstored" {
		t.Errorf("dom0: done %v fail %v", l.Dom0Done, l.Dom0Fail)
	}
}

// A marker with no argument is recorded by name (XA_XEN_MULTI_GONE=0's
// @@XA-MULTI-GONE-LEFT-OUT@@, say).
func TestParseMarks(t *testing.T) {
	l := Parse("(XEN) noise\r\n@@XA-MULTI-GONE-LEFT-OUT@@\r\n@@XA-T dom0-done 12.3@@\r\n")
	if !l.Marks["MULTI-GONE-LEFT-OUT"] {
		t.Errorf("marks: %v", l.Marks)
	}
	if l.Marks["T"] {
		t.Error("a marker with an argument counted as a bare one")
	}
}
