package ext4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// needTool fails the test (never skips it) when an e2fsprogs tool is
// missing: these tests are the proof that the decoder reads real images.
func needTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: install e2fsprogs to run these tests (apt-get install e2fsprogs)", n)
		}
	}
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// mkfs makes a size-byte image with mkfs.KIND ARGS..., populated from dir
// when dir is not empty.
func mkfs(t testing.TB, kind, size, dir string, args ...string) string {
	t.Helper()
	needTool(t, "mkfs."+kind)
	img := filepath.Join(t.TempDir(), kind+".img")
	a := append([]string{"-q", "-F", "-E", "root_owner=0:0,lazy_itable_init=0"}, args...)
	if dir != "" {
		a = append(a, "-d", dir)
	}
	a = append(a, img, size)
	runCmd(t, "mkfs."+kind, a...)
	// mkfs -d writes linear directories; e2fsck -D rebuilds every large
	// one as an htree, as the kernel would have grown it.
	e2fsck(t, img, "-fyD")
	return img
}

// e2fsck runs e2fsck with args on img; exit status 0 (clean) and 1
// (errors corrected, e.g. directories optimised) are success.
func e2fsck(t testing.TB, img string, args ...string) string {
	t.Helper()
	needTool(t, "e2fsck")
	cmd := exec.Command("e2fsck", append(args, img)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil
	}
	if err != nil {
		t.Fatalf("e2fsck %v %s: %v\n%s", args, img, err, out)
	}
	return string(out)
}

// debugfs runs debugfs commands (one per line) on img.
func debugfs(t testing.TB, img string, write bool, cmds ...string) string {
	t.Helper()
	needTool(t, "debugfs")
	args := []string{"-f", "-"}
	if write {
		args = append([]string{"-w"}, args...)
	}
	cmd := exec.Command("debugfs", append(args, img)...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs %v: %v\n%s", cmds, err, errb.String())
	}
	return out.String()
}

func openImage(t testing.TB, img string, opts Options) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(f, st.Size(), opts)
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return fs
}

// dfsEntry is one line of debugfs `ls -p`: /ino/mode/uid/gid/name/size/.
type dfsEntry struct {
	ino        uint32
	mode       uint16
	uid, gid   uint32
	name       string
	size       uint64
	sizeParsed bool
}

// debugfsLs lists a directory the way e2fsprogs reads it.
func debugfsLs(t testing.TB, img, path string) []dfsEntry {
	t.Helper()
	out := debugfs(t, img, false, "ls -p "+path)
	var ents []dfsEntry
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "/") {
			continue
		}
		f := strings.Split(l, "/")
		// "", ino, mode, uid, gid, name..., size, ""
		if len(f) < 8 {
			t.Fatalf("debugfs ls -p line %q", l)
		}
		ino, _ := strconv.ParseUint(f[1], 10, 32)
		mode, _ := strconv.ParseUint(f[2], 8, 32)
		uid, _ := strconv.ParseUint(f[3], 10, 32)
		gid, _ := strconv.ParseUint(f[4], 10, 32)
		name := strings.Join(f[5:len(f)-2], "/")
		size, err := strconv.ParseUint(f[len(f)-2], 10, 64)
		if ino == 0 || name == "." || name == ".." {
			continue
		}
		ents = append(ents, dfsEntry{uint32(ino), uint16(mode), uint32(uid), uint32(gid), name, size, err == nil})
	}
	return ents
}

// debugfsStat returns the "Links:" count and "Generation:" of an inode.
func debugfsStat(t testing.TB, img string, ino uint32) (links uint64, gen uint64) {
	t.Helper()
	out := debugfs(t, img, false, "stat <"+strconv.FormatUint(uint64(ino), 10)+">")
	fields := strings.Fields(out)
	for i, w := range fields {
		if i+1 >= len(fields) {
			break
		}
		switch w {
		case "Links:":
			links, _ = strconv.ParseUint(fields[i+1], 10, 64)
		case "Generation:":
			gen, _ = strconv.ParseUint(fields[i+1], 10, 64)
		}
	}
	return links, gen
}

func unzstd(t testing.TB, src string) string {
	t.Helper()
	comp, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("fixture missing: %v (regenerate with testdata/ext4/make-fixtures.sh)", err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	img, err := dec.DecodeAll(comp, nil)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	dst := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".zst"))
	if err := os.WriteFile(dst, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func execOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
