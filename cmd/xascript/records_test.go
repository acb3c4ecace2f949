package main

import "testing"

// TestRecordGuestAndTime: what records call the target, and when they
// carry the time, for each way of naming one.
func TestRecordGuestAndTime(t *testing.T) {
	for _, c := range []struct {
		o     options
		guest string
		live  bool
	}{
		{options{file: "/srv/dumps/web1.elf.zst"}, "web1.elf.zst", false},
		{options{qemu: "/run/vm.qmp"}, "/run/vm.qmp", true},
		{options{dom: "web1"}, "web1", true},
		{options{dom: "3"}, "3", true},
		{options{disk: "/img/disk.raw", nbd: "/run/d.sock"}, "disk.raw", true},
		{options{disk: "/img/disk.raw", tapfifo: "/run/tap"}, "disk.raw", true},
		{options{disk: "/img/before.raw", diskAfter: "/img/after.raw"}, "before.raw", false},
		{options{file: "mem.raw", disk: "/img/disk.raw", nbd: "/run/d.sock"}, "mem.raw", true},
		{options{}, "", false},
	} {
		if g, l := c.o.guestName(), c.o.recordsLive(); g != c.guest || l != c.live {
			t.Errorf("%+v: guest %q, time %v; want %q, %v", c.o, g, l, c.guest, c.live)
		}
	}
}
