package bindings

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"1.0", "1.0", true},
		{"1.0", "1", true},
		{"1.2", "1.1", true},
		{"1.10", "1.9", true}, // numbers, not strings
		{"1.9", "1.10", false},
		{"2.0", "1.7", true},
		{"1.0", "2.0", false},
		{"1.0", "1.1", false},
	} {
		got, err := versionAtLeast(tc.have, tc.want)
		if err != nil || got != tc.ok {
			t.Errorf("versionAtLeast(%q, %q) = %v, %v; want %v", tc.have, tc.want, got, err, tc.ok)
		}
	}
	for _, bad := range []string{"", ".", "1.", "x", "1.x", "-1", "1.-2", " 1", "1.0.0", "99999999", "1e3"} {
		if _, err := versionAtLeast("1.0", bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
	if _, _, err := parseVersion(APIVersion); err != nil || strings.Count(APIVersion, ".") != 1 {
		t.Errorf("APIVersion %q is not MAJOR.MINOR: %v", APIVersion, err)
	}
}

// runLua runs src in a state with the API registered and returns the error
// message, "" on success.
func runLua(t *testing.T, src string) string {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{})
	if err := L.DoString(src); err != nil {
		return err.Error()
	}
	return ""
}

func TestRequireVersion(t *testing.T) {
	if msg := runLua(t, `xascript.require_version("`+APIVersion+`"); xascript.require_version("0.1"); xascript.require_version("1")
		assert(xascript.api_version == "`+APIVersion+`")`); msg != "" {
		t.Fatalf("current version refused: %s", msg)
	}
	for src, want := range map[string]string{
		"\n\nxascript.require_version(\"99.0\")": "<string>:3: this script needs xascript Lua API 99.0 or newer; this xascript has API " + APIVersion + ": upgrade xascript",
		`xascript.require_version("1.999999")`:   "needs xascript Lua API 1.999999 or newer",
		`xascript.require_version(2.0)`:          `bad argument #1 to 'xascript.require_version' (version must be a string such as "` + APIVersion + `", not number)`,
		`xascript.require_version()`:             "not nil",
		`xascript.require_version("v2")`:         `version "v2": want MAJOR.MINOR`,
	} {
		if msg := runLua(t, src); !strings.Contains(msg, want) {
			t.Errorf("%s: error %q, want it to contain %q", src, msg, want)
		}
	}
}

// TestAPIHistory enforces the versioning rule on globals: every binding says
// in which version it arrived, and adding one moves APIVersion.
func TestAPIHistory(t *testing.T) {
	last := apiHistory[len(apiHistory)-1].Version
	if last != APIVersion {
		t.Errorf("apiHistory ends at %s, APIVersion is %s", last, APIVersion)
	}
	listed := map[string]string{}
	prev := ""
	for _, h := range apiHistory {
		if prev != "" {
			if newer, err := versionAtLeast(h.Version, prev); err != nil || !newer || h.Version == prev {
				t.Errorf("apiHistory: %s does not follow %s", h.Version, prev)
			}
		}
		prev = h.Version
		for _, n := range h.Added {
			if v, dup := listed[n]; dup {
				t.Errorf("apiHistory lists %s in %s and %s", n, v, h.Version)
			}
			listed[n] = h.Version
		}
	}
	all := map[string]bool{}
	for _, n := range Names() {
		all[n] = true
		if listed[n] == "" {
			t.Errorf("binding %s is not in apiHistory: a new binding bumps APIVersion's MINOR and is listed under it", n)
		}
	}
	for n, v := range listed {
		if !all[n] {
			t.Errorf("apiHistory lists %s (API %s), which no longer exists: removing a binding bumps APIVersion's MAJOR; drop it from the history then", n, v)
		}
	}
}
