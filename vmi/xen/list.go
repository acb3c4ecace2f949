package xen

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Domain is one domain as List sees it: what `xl list` prints, and its kind.
type Domain struct {
	ID   uint16 `json:"id"`
	Name string `json:"name"` // from xenstore; "" when it has none
	// Type is "PV", "PVH" or "HVM".
	Type string `json:"type"`
	// MemoryMiB is what `xl list` shows as Mem: the pages the domain holds
	// plus those claimed for it, in MiB (rounded down, as xl does).
	MemoryMiB uint64 `json:"memory_mib"`
	VCPUs     uint32 `json:"vcpus"` // online
	// State is xl's six letters: r(unning) b(locked) p(aused) s(hutdown),
	// the shutdown's reason (r(eboot) s(uspend) c(rash) w(atchdog)
	// S(oft reset), '-' for poweroff) and d(ying); '-' for each that does
	// not hold.
	State string `json:"state"`
}

// Alive tells whether the domain can be introspected: it is neither dying
// nor shut down.
func (d Domain) Alive() bool { return d.State[3] == '-' && d.State[5] == '-' }

// domidFirstReserved is DOMID_FIRST_RESERVED: ids from here on are not
// domains (DOMID_SELF, DOMID_IO, ...).
const domidFirstReserved = 0x7ff0

// maxListed bounds the walk over domains: Xen has at most
// domidFirstReserved of them, and a hypervisor that answered the same
// domain again and again must not keep the walk going.
const maxListed = domidFirstReserved

// List returns every domain the hypervisor has, in id order, named from
// xenstore when xenstore answers (a listing without names is still a
// listing). It needs root in dom0.
func List() ([]Domain, error) {
	if err := needRoot(); err != nil {
		return nil, err
	}
	p, err := openPrivcmd()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var names domainNames
	if xs, err := dialXenstore(XenstorePaths, 5*time.Second); err == nil {
		defer xs.Close()
		names = xs
	}
	return listDomains(p, names)
}

// domainNames is what listing needs from xenstore: the domains it knows
// and their names.
type domainNames interface {
	directory(path string) ([]string, error)
	domainName(id uint16) string
}

// listDomains walks the domains through getdomaininfo. On Xen 4.17 the
// domctl answers for the first domain whose id is at least the one asked
// for, so one call per domain finds them all; ids that xenstore knows are
// asked for as well, so that a hypervisor that answers only for the exact
// id (later releases do) still lists every named domain.
func listDomains(hv hypervisor, names domainNames) ([]Domain, error) {
	ver, _, err := hv.Version()
	if err != nil {
		return nil, err
	}
	a, err := abiFor(ver)
	if err != nil {
		return nil, err
	}
	info := func(id uint16) (domainInfo, error) {
		dc := a.newDomctl(domctlGetDomainInfo, id)
		if err := hv.Domctl(dc, nil, 0); err != nil {
			return domainInfo{}, err
		}
		return a.decodeDomainInfo(dc), nil
	}
	seen := map[uint16]domainInfo{}
	for id := uint32(0); id < domidFirstReserved && len(seen) < maxListed; {
		d, err := info(uint16(id))
		if errors.Is(err, unix.ESRCH) {
			break // no domain from id on
		}
		if err != nil {
			return nil, fmt.Errorf("getdomaininfo of domain %d: %w", id, err)
		}
		if uint32(d.ID) < id || d.ID >= domidFirstReserved {
			// The answer must move forward: anything else would loop.
			return nil, fmt.Errorf("getdomaininfo of domain %d answered for domain %d", id, d.ID)
		}
		seen[d.ID] = d
		id = uint32(d.ID) + 1
	}
	if names != nil {
		ids, _ := names.directory("/local/domain")
		for _, s := range ids {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil || n >= domidFirstReserved {
				continue
			}
			if _, ok := seen[uint16(n)]; ok || len(seen) >= maxListed {
				continue
			}
			// xenstore can hold a domain that is gone: only the
			// hypervisor's exact answer counts.
			if d, err := info(uint16(n)); err == nil && d.ID == uint16(n) {
				seen[d.ID] = d
			}
		}
	}
	out := make([]Domain, 0, len(seen))
	for _, d := range seen {
		dom := describe(d)
		if names != nil {
			dom.Name = names.domainName(d.ID)
		}
		out = append(out, dom)
	}
	slices.SortFunc(out, func(x, y Domain) int { return int(x.ID) - int(y.ID) })
	return out, nil
}

// describe turns getdomaininfo into a Domain, as xl list reads the same
// fields.
func describe(d domainInfo) Domain {
	typ := "PV"
	if d.hvm() {
		typ = "PVH"
		if d.Emulation&^(x86EmuLAPIC|x86EmuVPCI) != 0 {
			typ = "HVM"
		}
	}
	state := []byte("------")
	for i, on := range []bool{d.Flags&dominfRunning != 0, d.Flags&dominfBlocked != 0, d.paused(), d.shutdown(), false, d.dying()} {
		if on {
			state[i] = "rbps-d"[i]
		}
	}
	if d.shutdown() {
		// xl's letters for SHUTDOWN_poweroff, reboot, suspend, crash,
		// watchdog, soft_reset; '?' for a reason it does not know.
		const reasons = "-rscwS"
		state[4] = '?'
		if r := (d.Flags >> dominfShutdownShift) & 0xff; r < uint32(len(reasons)) {
			state[4] = reasons[r]
		}
	}
	// xl: (current_memkb + outstanding_memkb) / 1024, with 4 KiB pages.
	mem := (d.TotPages + d.Outstanding) * (pageSize / 1024) / 1024
	return Domain{ID: d.ID, Type: typ, MemoryMiB: mem, VCPUs: d.OnlineVCPUs, State: string(state)}
}
