package xen

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeDomain is one domain of fakeHost, in getdomaininfo's terms.
type fakeDomain struct {
	flags       uint32
	pages       uint64
	outstanding uint64
	vcpus       uint32
	emulation   uint32
}

// fakeHost answers getdomaininfo for several domains as Xen 4.17 does: for
// the first domain whose id is at least the one asked for, ESRCH past the
// last. exact switches to later releases' answer for that id only. The
// replies are encoded with the offsets offsetof() gives for Xen 4.17's
// struct xen_domctl_getdomaininfo (libxen-dev 4.17.7), written as literals.
type fakeHost struct {
	fakeHV
	doms  map[uint16]fakeDomain
	exact bool
	calls int
}

func (f *fakeHost) Domctl(dc []byte, buf []byte, handleOff int) error {
	f.calls++
	if le.Uint32(dc[4:]) != 0x15 || le.Uint32(dc[0:]) != 5 {
		return unix.EINVAL
	}
	want := le.Uint16(dc[8:])
	id, found := uint16(0), false
	for d := range f.doms {
		if d == want || (!f.exact && d > want && (!found || d < id)) {
			id, found = d, true
		}
	}
	if _, ok := f.doms[want]; ok {
		id, found = want, true
	}
	if !found {
		return unix.ESRCH
	}
	d := f.doms[id]
	u := dc[16:]
	le.PutUint16(dc[8:], id) // Xen writes the domain it answered for back
	le.PutUint16(u[0:], id)
	le.PutUint32(u[4:], d.flags)
	le.PutUint64(u[8:], d.pages)
	le.PutUint64(u[16:], d.pages)
	le.PutUint64(u[24:], d.outstanding)
	le.PutUint32(u[64:], d.vcpus)
	le.PutUint32(u[104:], d.emulation)
	return nil
}

// fakeNames is xenstore's /local/domain.
type fakeNames map[uint16]string

func (n fakeNames) directory(path string) ([]string, error) {
	if path != "/local/domain" {
		return nil, fmt.Errorf("xenstore %s: ENOENT", path)
	}
	var ids []string
	for id := range n {
		ids = append(ids, fmt.Sprint(id))
	}
	return ids, nil
}

func (n fakeNames) domainName(id uint16) string { return n[id] }

// The host of make e2e-xen, plus an HVM guest, a paused one, a crashed one
// and one being destroyed, as xl list would show them.
func testHost() *fakeHost {
	const (
		dying, hvm, shutdown, paused, blocked, running = 1, 2, 4, 8, 16, 32
		crash                                          = 3 << 16
	)
	return &fakeHost{
		fakeHV: fakeHV{version: 4<<16 | 17},
		doms: map[uint16]fakeDomain{
			0:  {flags: running, pages: 131072, vcpus: 1},
			1:  {flags: blocked, pages: 32768, vcpus: 1},                           // PV
			2:  {flags: hvm | blocked, pages: 32768 - 256, vcpus: 1, emulation: 1}, // PVH
			5:  {flags: hvm | running, pages: 65536, outstanding: 256, vcpus: 2, emulation: 0x3ff},
			7:  {flags: hvm | paused | blocked, pages: 1024, vcpus: 1, emulation: 1 | 1<<10},
			9:  {flags: shutdown | crash, pages: 1024, vcpus: 1},
			40: {flags: dying, pages: 0, vcpus: 0},
		},
	}
}

func TestListDomains(t *testing.T) {
	names := fakeNames{0: "Domain-0", 1: "xa-pv", 2: "xa-pvh", 5: "win", 7: "held", 9: "oops", 40: "going"}
	want := []Domain{
		{0, "Domain-0", "PV", 512, 1, "r-----"},
		{1, "xa-pv", "PV", 128, 1, "-b----"},
		{2, "xa-pvh", "PVH", 127, 1, "-b----"},
		{5, "win", "HVM", 257, 2, "r-----"},
		{7, "held", "PVH", 4, 1, "-bp---"},
		{9, "oops", "PV", 4, 1, "---sc-"},
		{40, "going", "PV", 0, 0, "-----d"},
	}
	for _, exact := range []bool{false, true} {
		h := testHost()
		h.exact = exact
		got, err := listDomains(h, names)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("exact=%v:\n got %v\nwant %v", exact, got, want)
		}
		// 4.17: one call per domain and one that finds none after the
		// last; then one per xenstore id not found yet (none).
		if !exact && h.calls != len(want)+1 {
			t.Errorf("%d getdomaininfo calls for %d domains", h.calls, len(want))
		}
	}
	alive := 0
	for _, d := range want {
		if d.Alive() {
			alive++
		}
	}
	if alive != 5 {
		t.Errorf("%d domains alive, want 5 (not the crashed nor the dying one)", alive)
	}

	// Without xenstore the domains are still listed, unnamed.
	got, err := listDomains(testHost(), nil)
	if err != nil || len(got) != len(want) || got[1].Name != "" || got[1].Type != "PV" {
		t.Errorf("without xenstore: %v %v", got, err)
	}
	// A domain that xenstore still names but the hypervisor has no more is
	// not listed.
	names[77] = "stale"
	got, err = listDomains(testHost(), names)
	if err != nil || len(got) != len(want) {
		t.Errorf("stale xenstore entry: %v %v", got, err)
	}
}

// A hypervisor that answers for an earlier domain than asked, or for the
// same one forever, cannot make the walk loop.
type backwardsHost struct{ fakeHost }

func (b *backwardsHost) Domctl(dc []byte, buf []byte, handleOff int) error {
	b.calls++
	if b.calls > 10 {
		return fmt.Errorf("walk did not stop")
	}
	le.PutUint16(dc[8:], 0)
	le.PutUint16(dc[16:], 0)
	return nil
}

func TestListDomainsHostile(t *testing.T) {
	b := &backwardsHost{fakeHost{fakeHV: fakeHV{version: 4<<16 | 17}}}
	_, err := listDomains(b, nil)
	if err == nil || !strings.Contains(err.Error(), "answered for domain 0") {
		t.Errorf("backwards answer: %v", err)
	}
	h := testHost()
	h.version = 4<<16 | 99
	if _, err := listDomains(h, nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown release: %v", err)
	}
}
