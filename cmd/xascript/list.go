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

// listEntry is one guest of the listing: a Xen domain (the Domain fields)
// or a QEMU guest (socket, status, pid).
type listEntry struct {
	Kind string `json:"kind"` // "xen" or "qemu"
	*xen.Domain
	Socket string    `json:"socket,omitempty"`
	QEMU   *qmpProbe `json:"qemu,omitempty"`
}

// qmpProbe is what a QMP socket said about its guest.
type qmpProbe struct {
	Name   string `json:"name,omitempty"`   // -name, "" when QEMU has none
	Status string `json:"status,omitempty"` // query-status: running, paused, ...
	PID    int    `json:"pid,omitempty"`    // QEMU's, from the socket's peer
	Error  string `json:"error,omitempty"`  // why the probe failed
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

// runList prints the guests: a table, or with --json one JSON array.
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
		for i := range doms {
			entries = append(entries, listEntry{Kind: "xen", Domain: &doms[i]})
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
		entries = append(entries, listEntry{Kind: "qemu", Socket: s, QEMU: &probes[i]})
	}
	if o.json {
		if entries == nil {
			entries = []listEntry{}
		}
		b, err := json.MarshalIndent(entries, "", "  ")
		if err != nil {
			printError(stderr, "xascript list", err, o.verbose)
			return exitInternal
		}
		fmt.Fprintf(stdout, "%s\n", b)
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
	for _, e := range entries {
		if e.Domain != nil {
			d := e.Domain
			flag := "--dom " + d.Name
			if d.Name == "" {
				flag = fmt.Sprint("--dom ", d.ID)
			}
			fmt.Fprintf(tw, "xen\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", d.ID, clean(d.Name), d.Type, d.MemoryMiB, d.VCPUs, d.State, clean(flag))
			continue
		}
		p := e.QEMU
		state := p.Status
		if p.err != nil {
			state = "? " + p.Error
		}
		name := p.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "qemu\t-\t%s\t-\t-\t-\t%s\t%s\n", clean(name), clean(state), clean("--qemu "+e.Socket))
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
