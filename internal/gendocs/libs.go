package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// A shared library's doc block is the run of comment lines it starts with:
//
//	-- @module linux
//	-- Helpers for Linux kernel structures ... (Markdown)
//	--
//	-- More Markdown.
//
// The first line names the module as require does ("a.b" for a/b.lua and
// for a/b/init.lua); the rest, each line without its "--" and one space, is
// the Markdown that docs/lua-libs.md shows under the module's name. The
// block ends at the first line that is not a comment. Plain "--" comments,
// not LuaLS's "---", so that editors do not read the block as annotations.

const modulePrefix = "-- @module "

// maxDocLines bounds a doc block; a reference entry longer than this is a
// file that forgot to end its block.
const maxDocLines = 200

// libDoc is one library's entry.
type libDoc struct {
	Module    string
	Doc       string
	Functions []libFunc
}

// libFunc is a function a library defines at its top level
// ("function linux.modules()"), with the comment lines right above it.
type libFunc struct {
	Signature string // "linux.modules()"
	Doc       string
}

// libFuncRE matches a top-level function definition on a table field.
var libFuncRE = regexp.MustCompile(`^function ([A-Za-z_][A-Za-z0-9_]*[.:][A-Za-z_][A-Za-z0-9_]*\([^)]*\))`)

// libFunctions lists the top-level functions of src, in order, each with
// the "--" comment block that ends on the line above it.
func libFunctions(src string) []libFunc {
	var funcs []libFunc
	var comment []string
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, " \r")
		if strings.HasPrefix(line, "--") {
			comment = append(comment, strings.TrimPrefix(strings.TrimPrefix(line, "--"), " "))
			continue
		}
		if m := libFuncRE.FindStringSubmatch(line); m != nil {
			funcs = append(funcs, libFunc{Signature: m[1], Doc: strings.TrimSpace(strings.Join(comment, "\n"))})
		}
		comment = nil
	}
	return funcs
}

// moduleName is what require calls the library at file (a path in the
// library folder): "a/b.lua" and "a/b/init.lua" are both "a.b".
func moduleName(file string) string {
	m := strings.TrimSuffix(file, ".lua")
	if strings.HasSuffix(m, "/init") {
		m = strings.TrimSuffix(m, "/init")
	}
	return strings.ReplaceAll(m, "/", ".")
}

// parseLibDoc reads the doc block at the top of the library src found at
// file.
func parseLibDoc(file, src string) (libDoc, error) {
	want := moduleName(file)
	sc := bufio.NewScanner(strings.NewReader(src))
	if !sc.Scan() || strings.TrimRight(sc.Text(), " \r") != modulePrefix+want {
		return libDoc{}, fmt.Errorf("%s: the first line must be %q, then the library's doc as Markdown in -- comments",
			file, modulePrefix+want)
	}
	var lines []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		if !strings.HasPrefix(line, "--") || strings.HasPrefix(line, "---") {
			break
		}
		if len(lines) == maxDocLines {
			return libDoc{}, fmt.Errorf("%s: doc block longer than %d lines", file, maxDocLines)
		}
		line = strings.TrimPrefix(line, "--")
		lines = append(lines, strings.TrimPrefix(line, " "))
	}
	if err := sc.Err(); err != nil {
		return libDoc{}, fmt.Errorf("%s: %w", file, err)
	}
	doc := strings.TrimSpace(strings.Join(lines, "\n"))
	if doc == "" {
		return libDoc{}, fmt.Errorf("%s: the doc block after %q is empty", file, modulePrefix+want)
	}
	return libDoc{Module: want, Doc: doc, Functions: libFunctions(src)}, nil
}

// libsMarkdown renders docs/lua-libs.md from every .lua under libs.
func libsMarkdown(libs fs.FS) (string, error) {
	var docs []libDoc
	err := fs.WalkDir(libs, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".lua" {
			return err
		}
		src, err := fs.ReadFile(libs, p)
		if err != nil {
			return err
		}
		doc, err := parseLibDoc(p, string(src))
		if err != nil {
			return err
		}
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(docs) == 0 {
		return "", fmt.Errorf("no libraries found")
	}
	var b strings.Builder
	b.WriteString("# xascript shared Lua libraries\n\n")
	b.WriteString("<!-- Generated from the doc block atop each scripts/lib/*.lua by `make docs`; do not edit. -->\n\n")
	b.WriteString("The libraries in `scripts/lib` are built into xascript: `require \"NAME\"` finds them with no files " +
		"beside the binary. `require \"a.b\"` looks for `a/b.lua`, then `a/b/init.lua`, in the script's own folder, " +
		"each `--lib DIR` in the order given, each folder of `$XASCRIPT_PATH`, and last these built-in libraries, " +
		"so a copy of a library in one of those folders is used instead of the built-in one.\n\n" +
		"A library starts with a doc block, from which this page is made: a first line `-- @module NAME` (NAME " +
		"as `require` spells it) and then the library's description in Markdown, in `--` comment lines. Each " +
		"function it defines at its top level (`function NAME.f(...)`) is listed below it with the comment lines " +
		"right above its definition.\n\n")
	for _, d := range docs {
		fmt.Fprintf(&b, "- [%s](#%s)\n", d.Module, strings.ReplaceAll(d.Module, ".", ""))
	}
	for _, d := range docs {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", d.Module, d.Doc)
		for _, f := range d.Functions {
			fmt.Fprintf(&b, "\n### `%s`\n", f.Signature)
			if f.Doc != "" {
				fmt.Fprintf(&b, "\n%s\n", f.Doc)
			}
		}
	}
	return b.String(), nil
}
