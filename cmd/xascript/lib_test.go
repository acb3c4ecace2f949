package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --lib that is not a folder is a usage error (exit 2) before the script
// runs; --lib folders come before $XASCRIPT_PATH's.
func TestLibFlag(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.lua")
	if err := os.WriteFile(script, []byte(`print("ran")`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{filepath.Join(dir, "nosuch"), script} {
		out, errOut, code := runCLI(t, script, "--lib", lib)
		if code != exitUsage || out != "" || !strings.HasPrefix(errOut, "xascript: --lib "+lib+": ") {
			t.Errorf("--lib %s: exit %d, stdout %q, stderr %q", lib, code, out, errOut)
		}
	}
	t.Setenv("XASCRIPT_PATH", "/env1"+string(filepath.ListSeparator)+string(filepath.ListSeparator)+"/env2")
	if got := requirePath([]string{dir, "."}); strings.Join(got, ",") != dir+",.,/env1,/env2" {
		t.Errorf("requirePath = %q", got)
	}
	if err := checkLibs([]string{dir, "."}); err != nil {
		t.Error(err)
	}
}
