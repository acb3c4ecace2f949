package xene2e

import (
	"strings"
	"testing"
)

// multiLog is a serial log of the multi block as dom0-run.sh and
// dom0-tests.sh print it, with two domUs of different module lists.
func multiLog(lkm, list, rounds string) string {
	domU := func(name, id, mods string) string {
		return "@@XA-BEGIN-DOMU " + name + "@@\n@@XA-BEGIN-MODULES@@\n" + mods + "@@XA-END-MODULES@@\n@@XA-READY@@\n@@XA-END-DOMU@@\n@@XA-DOMID " + name + " " + id + "@@\n"
	}
	cmd := func(label, out string) string {
		return "@@XA-BEGIN-CMD xa-pvh " + label + "@@\n@@XA-ARGV xascript " + label + "@@\n" + out + "@@XA-STDERR@@\n@@XA-END-CMD xa-pvh " + label + " rc=0 secs=1.00@@\n"
	}
	return domU("xa-pvh", "2", "isofs 1 0 - Live\ncdrom 1 1 isofs, Live\nloop 1 0 - Live\ntun 1 0 - Live\nveth 1 0 - Live\n") +
		domU("xa-multi", "3", "romfs 1 0 - Live\nisofs 1 0 - Live\ncdrom 1 1 isofs, Live\nloop 1 0 - Live\ntun 1 0 - Live\nveth 1 0 - Live\n") +
		cmd("multi-lkm", lkm) + cmd("multi-all", lkm) + cmd("multi-list", list) + cmd("multi-one-gone", rounds)
}

const (
	goodLKM = "{\"guest\":\"xa-pvh\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"isofs\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"romfs\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"isofs\"}\n" +
		"{\"guest\":\"xa-pvh\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"cdrom\"}\n" +
		"{\"guest\":\"xa-pvh\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"loop\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"cdrom\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"loop\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"tun\"}\n" +
		"{\"guest\":\"xa-pvh\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"tun\"}\n" +
		"{\"guest\":\"xa-pvh\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"veth\"}\n" +
		"{\"guest\":\"xa-multi\",\"time\":\"2026-12-02T10:00:00.5Z\",\"name\":\"veth\"}\n"
	goodList = `Name                                        ID   Mem VCPUs	State	Time(s)
Domain-0                                     0   512     1     r-----      60.1
xa-pvh                                       2   127     1     -b----       9.0
xa-multi                                     3   128     1     --p---       3.2
--- xascript list --json ---
{"kind":"xen","id":0,"name":"Domain-0","type":"PV","memory_mib":512,"vcpus":1,"state":"r-----"}
{"kind":"xen","id":2,"name":"xa-pvh","type":"PVH","memory_mib":127,"vcpus":1,"state":"r-----"}
{"kind":"xen","id":3,"name":"xa-multi","type":"PV","memory_mib":128,"vcpus":1,"state":"-bp---"}
`
	goodRounds = "[xa-pvh] round 1 5\n[xa-multi] round 1 6\n[xa-pvh] round 2 5\n[xa-pvh] round 3 5\n"
)

func TestCheckMulti(t *testing.T) {
	ran, errs := CheckMulti(Parse(multiLog(goodLKM, goodList, goodRounds)))
	if len(errs) != 0 || strings.Join(ran, " ") != "multi-lkm multi-all multi-list multi-one-gone" {
		t.Fatalf("a good log: ran %v, errors %v", ran, errs)
	}
	for _, tc := range []struct{ name, lkm, list, rounds, want string }{
		{"a module of the other guest", strings.Replace(goodLKM, `"xa-pvh","time":"2026-12-02T10:00:00.5Z","name":"isofs"`, `"xa-pvh","time":"2026-12-02T10:00:00.5Z","name":"romfs"`, 1), goodList, goodRounds, "guest xa-pvh: printed [romfs"},
		{"a line not a record", goodLKM + "veth\n", goodList, goodRounds, `line "veth" is not a JSON record`},
		{"a guest not started", goodLKM + `{"guest":"xa-pv","time":"2026-12-02T10:00:00.5Z","name":"veth"}` + "\n", goodList, goodRounds, `guest "xa-pv"`},
		{"no time", strings.Replace(goodLKM, `"time":"2026-12-02T10:00:00.5Z",`, "", 1), goodList, goodRounds, "no time"},
		{"two lines mixed", strings.Replace(goodLKM, `"name":"loop"}`+"\n", `"name":"lo{"guest":"xa-multi"`+"\n", 1), goodList, goodRounds, "is not a JSON record"},
		{"memory differs", goodLKM, strings.Replace(goodList, `"memory_mib":127`, `"memory_mib":128`, 1), goodRounds, "domain 2: xascript list says"},
		{"paused missed", goodLKM, strings.Replace(goodList, `"-bp---"`, `"-b----"`, 1), goodRounds, "domain 3"},
		{"type", goodLKM, strings.Replace(goodList, `"PVH"`, `"HVM"`, 1), goodRounds, "type HVM, want PVH"},
		{"a domain missing", goodLKM, strings.Replace(goodList, `"id":3`, `"id":4`, 1), goodRounds, "no domain 3"},
		{"wrong count", goodLKM, goodList, strings.Replace(goodRounds, "round 2 5", "round 2 4", 1), "want round 2 with 5 modules"},
		{"a round skipped", goodLKM, goodList, strings.Replace(goodRounds, "round 3 5", "round 4 5", 1), "want round 3"},
		{"no round of one", goodLKM, goodList, "[xa-pvh] round 1 5\n", "no round from xa-multi"},
	} {
		_, errs := CheckMulti(Parse(multiLog(tc.lkm, tc.list, tc.rounds)))
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: errors %v, want one saying %q", tc.name, errs, tc.want)
		}
	}
	// The block did not run at all.
	if _, errs := CheckMulti(Parse("@@XA-DOM0-DONE@@\n")); len(errs) != 1 || !strings.Contains(errs[0].Error(), "did not run") {
		t.Errorf("no block: %v", errs)
	}
}
