package bindings_test

import (
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

func runOut(t *testing.T, env *bindings.Env, src string) (string, error) {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: env})
	defer rt.Close()
	err := rt.RunString(src, "t.lua", nil)
	rt.Flush()
	return out.String(), err
}

// help prints, as the reference says; it returns nothing, so a REPL line
// or a script line `help("x")` prints the text once.
func TestHelpPrints(t *testing.T) {
	b, ok := bindings.Lookup("walk_list")
	if !ok {
		t.Fatal("no walk_list")
	}
	out, err := runOut(t, &bindings.Env{}, `help("walk_list") print(select("#", help("walk_list")))`)
	if err != nil {
		t.Fatal(err)
	}
	entry := b.Signature + "\n\n" + b.Doc + "\n"
	if out != entry+entry+"0\n" {
		t.Errorf("help(\"walk_list\") printed %q", out)
	}
	out, err = runOut(t, &bindings.Env{}, `help() help("nope")`)
	if err != nil {
		t.Fatal(err)
	}
	want := "functions: " + strings.Join(bindings.Names(), " ") + "\nhelp(\"name\") describes one.\n" +
		"help: no function named nope; help() lists them\n"
	if out != want {
		t.Errorf("help() printed %q, want %q", out, want)
	}
}

// NeedsTarget, which the CLI checks a script's globals against before it
// runs with no target, says exactly which bindings raise "no target" when
// called without one.
func TestNeedsTargetMatchesBindings(t *testing.T) {
	for _, name := range bindings.Names() {
		out, err := runOut(t, &bindings.Env{}, `print(select(2, pcall(`+name+`)))`)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raised := strings.Contains(out, "no target")
		if raised != bindings.NeedsTarget(name) {
			t.Errorf("%s: NeedsTarget %v, but called with no target it gave %q", name, bindings.NeedsTarget(name), out)
		}
	}
	if bindings.NeedsTarget("print") || bindings.NeedsTarget("nope") {
		t.Error("NeedsTarget of a name that is no binding")
	}
}
