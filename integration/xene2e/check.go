package xene2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// LKMPrefix marks the commands of dom0-tests.sh whose stdout must be
// exactly the domU's modules, in /proc/modules order: the records of
// scripts/examples/lkm.lua --json, one a line, each naming the domain as
// the command did (its name or id) and carrying the time (a live guest).
const LKMPrefix = "lkm"

// CheckDomU reports whether the domU came up and printed its module list;
// it returns the module names.
func CheckDomU(l *Log, name string) ([]string, error) {
	d := l.DomUs[name]
	if d == nil {
		return nil, fmt.Errorf("dom0 never created or reported domU %s (no @@XA-BEGIN-DOMU %s@@)", name, name)
	}
	if len(d.Fail) > 0 {
		return nil, fmt.Errorf("domU %s failed: %s; its console:\n%s", name, strings.Join(d.Fail, "; "), tail(d.Console, 30))
	}
	mods, ok := d.Modules()
	if !ok {
		return nil, fmt.Errorf("domU %s printed no complete @@XA-BEGIN/END-MODULES@@ section; its console:\n%s", name, tail(d.Console, 30))
	}
	if len(mods) < 5 {
		return nil, fmt.Errorf("domU %s lists only %d modules (%v); its init loads about 10", name, len(mods), mods)
	}
	if d.ID == "" {
		return nil, fmt.Errorf("dom0 printed no domain id for %s", name)
	}
	return mods, nil
}

// CheckCommand checks one command: it finished, exited 0, and an lkm one
// printed exactly want.
func CheckCommand(c *Command, domID string, want []string) error {
	what := fmt.Sprintf("%q (domU %s, domain %s)", c.Argv, c.DomU, domID)
	if !c.Done {
		return fmt.Errorf("%s: output cut off (no @@XA-END-CMD@@); stdout:\n%s\nstderr:\n%s",
			what, strings.Join(c.Stdout, "\n"), strings.Join(c.Stderr, "\n"))
	}
	if c.RC != 0 {
		why := ""
		if c.RC == 137 {
			why = " (SIGKILL: dom0's per-command timeout, XA_CMD_TIMEOUT)"
		}
		return fmt.Errorf("%s exited with status %d%s; stdout:\n%s\nstderr:\n%s", what, c.RC, why,
			strings.Join(c.Stdout, "\n"), strings.Join(c.Stderr, "\n"))
	}
	if !strings.HasPrefix(c.Label, LKMPrefix) {
		return nil
	}
	lines := c.Stdout
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var got []string
	for _, line := range lines {
		var r struct{ Guest, Time, Name string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s wrote %q, not a JSON record: %v", what, line, err)
		}
		if r.Guest != c.DomU && r.Guest != domID {
			return fmt.Errorf("%s wrote %q: guest %q, want the domain's name %q or id %s", what, line, r.Guest, c.DomU, domID)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			return fmt.Errorf("%s wrote %q: no time of a live guest's record: %v", what, line, err)
		}
		got = append(got, r.Name)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("%s printed %d lines:\n  %s\nthe domU's /proc/modules lists %d modules:\n  %s\nstderr:\n%s",
			what, len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "), strings.Join(c.Stderr, "\n"))
	}
	return nil
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
