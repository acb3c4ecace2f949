package main

// xascript list: the guests this host can see. Xen domains come from the
// hypervisor (vmi/xen.List: getdomaininfo over privcmd, names from
// xenstore); QEMU guests are the QMP sockets libvirt keeps per domain and
// those in each --qemu-dir, each probed with a QMP handshake and
// query-name/query-status under a timeout.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/xascript/xascript/vmi/qemu"
	"github.com/xascript/xascript/vmi/xen"
)

// libvirtQMPGlobs are where libvirt's QEMU driver keeps each running
// domain's monitor socket (system instance): domain-ID-NAME/monitor.sock
// under its state folder (/var/lib/libvirt/qemu, or /run/libvirt/qemu on
// some builds), and NAME.monitor in older releases.
var libvirtQMPGlobs = []string{
	"/var/lib/libvirt/qemu/domain-*/monitor.sock",
	"/var/lib/libvirt/qemu/*.monitor",
	"/run/libvirt/qemu/domain-*/monitor.sock",
	"/run/libvirt/qemu/*.monitor",
	"/run/libvirt/qemu/*.sock",
}

// xenHost tells whether this is a Xen dom0 (privcmd is there); tests
// replace it.
var xenHost = func() bool {
	for _, p := range []string{"/dev/xen/privcmd", "/proc/xen/privcmd"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// listEntry is one guest of the listing, one JSON object per line with
// --json: a Xen domain (id, name, type, memory, vCPUs, xl's state letters)
// or a QEMU guest (its socket, -name, query-status state, QEMU's pid, or
// why the socket could not be probed).
type listEntry struct {
	Kind      string  `json:"kind"` // "xen" or "qemu"
	ID        *uint16 `json:"id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Type      string  `json:"type,omitempty"` // PV, PVH, HVM
	MemoryMiB *uint64 `json:"memory_mib,omitempty"`
	VCPUs     *uint32 `json:"vcpus,omitempty"`
	State     string  `json:"state,omitempty"`
	Socket    string  `json:"socket,omitempty"`
	PID       int     `json:"pid,omitempty"`
	Error     string  `json:"error,omitempty"`
	flag      string  // the target flag that names it
}

func xenEntry(d xen.Domain) listEntry {
	flag := "--dom " + d.Name
	if d.Name == "" {
		flag = fmt.Sprint("--dom ", d.ID)
	}
	return listEntry{Kind: "xen", ID: &d.ID, Name: d.Name, Type: d.Type, MemoryMiB: &d.MemoryMiB, VCPUs: &d.VCPUs, State: d.State, flag: flag}
}

func qemuEntry(sock string, p qmpProbe) listEntry {
	return listEntry{Kind: "qemu", Name: p.Name, State: p.Status, Socket: sock, PID: p.PID, Error: p.Error, flag: "--qemu " + sock}
}

// qmpProbe is what a QMP socket said about its guest.
type qmpProbe struct {
	Name   string // -name, "" when QEMU has none
	Status string // query-status: running, paused, ...
	PID    int    // QEMU's, from the socket's peer
	Error  string // why the probe failed
	err    error
}

// probeQMP asks the QEMU behind sock for its name and run state. timeout
// bounds the greeting and each command: a QEMU whose monitor serves
// another client (libvirt holds its own for good) answers no greeting.
func probeQMP(sock string, timeout time.Duration) (p qmpProbe) {
	defer func() {
		if p.err != nil {
			p.Error = oneLine(p.err)
		}
	}()
	c, err := qemu.Dial(sock, timeout, nil)
	if err != nil {
		p.err = err
		return p
	}
	defer c.Close()
	p.PID, _ = c.PeerPID()
	raw, err := c.Execute("query-name", nil)
	if err != nil {
		p.err = err
		return p
	}
	var name struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &name); err != nil {
		p.err = fmt.Errorf("qmp %s: query-name: %w", sock, err)
		return p
	}
	p.Name = name.Name
	raw, err = c.Execute("query-status", nil)
	if err != nil {
		p.err = err
		return p
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		p.err = fmt.Errorf("qmp %s: query-status: %w", sock, err)
		return p
	}
	p.Status = st.Status
	return p
}

// qmpSockets lists the sockets to probe: libvirt's, then every socket in
// each dir and in its subfolders one level down (live-guest.sh's DIR/NAME/
// qmp.sock), without duplicates, in a stable order.
func qmpSockets(dirs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if st, err := os.Stat(p); err == nil && st.Mode()&os.ModeSocket != 0 && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, g := range libvirtQMPGlobs {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			add(p)
		}
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("--qemu-dir: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("--qemu-dir %s: not a folder", d)
		}
		var found []string
		for _, pattern := range []string{"*", filepath.Join("*", "*")} {
			m, _ := filepath.Glob(filepath.Join(d, pattern))
			found = append(found, m...)
		}
		slices.Sort(found)
		for _, p := range found {
			add(p)
		}
	}
	return out, nil
}

// runList prints the guests: a table, or with --json one JSON object a
// line (as info and bench print theirs).
// Sources that fail (no root for Xen, a --qemu-dir that is not there) are
// reported on stderr; the exit status is 3 only when one failed and
// nothing was listed, 2 for a bad --qemu-dir.
func runList(o *options, stdout, stderr io.Writer) int {
	var entries []listEntry
	failed := false
	if xenHost() {
		doms, err := listXen()
		if err != nil {
			printError(stderr, "xascript list", fmt.Errorf("xen: %w", err), o.verbose)
			failed = true
		}
		for _, d := range doms {
			entries = append(entries, xenEntry(d))
		}
	}
	socks, err := qmpSockets(o.qemuDirs)
	if err != nil {
		printError(stderr, "xascript list", err, o.verbose)
		return exitUsage
	}
	probes := make([]qmpProbe, len(socks))
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probes[i] = probeQMP(s, qmpProbeTimeout)
		}()
	}
	wg.Wait()
	for i, s := range socks {
		entries = append(entries, qemuEntry(s, probes[i]))
	}
	if o.json {
		// One object per line, through the encoder of info's report and
		// of the scripts' records.
		for i := range entries {
			if err := writeJSONReport(stdout, &entries[i]); err != nil {
				printError(stderr, "xascript list", err, o.verbose)
				return exitInternal
			}
		}
	} else {
		printList(stdout, entries)
	}
	if failed && len(entries) == 0 {
		return exitTarget
	}
	return exitOK
}

// printList writes the table: one row per guest, with the flag that
// targets it.
func printList(w io.Writer, entries []listEntry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tID\tNAME\tTYPE\tMEM(MiB)\tVCPUS\tSTATE\tTARGET")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return clean(s)
	}
	for _, e := range entries {
		if e.Kind == "xen" {
			fmt.Fprintf(tw, "xen\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", *e.ID, dash(e.Name), e.Type, *e.MemoryMiB, *e.VCPUs, e.State, clean(e.flag))
			continue
		}
		state := e.State
		if e.Error != "" {
			state = "? " + e.Error
		}
		fmt.Fprintf(tw, "qemu\t-\t%s\t-\t-\t-\t%s\t%s\n", dash(e.Name), dash(state), clean(e.flag))
	}
	tw.Flush()
}

// clean keeps guest-chosen text (a domain's or QEMU's name) from breaking
// the table: control characters become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
