package diske2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Node is one name in a filesystem tree.
type Node struct {
	Kind   byte   // 'd' folder, 'f' regular file, 'l' symlink
	Inode  uint64 // on the image; in a replayed model, a name for the inode
	Target string // symlink text
}

// Tree maps absolute paths (without "/") to nodes.
type Tree map[string]Node

// debugfs runs debugfs read-only with one request and returns its stdout.
func debugfs(img, request string) (string, error) {
	cmd := exec.Command("debugfs", "-R", request, img)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debugfs -R %q %s: %v: %s", request, img, err, errb.String())
	}
	// debugfs reports a failed request on stderr and still exits 0.
	if s := errb.String(); strings.Contains(s, "File not found") || strings.Contains(s, "not found by ext2_lookup") {
		return "", fmt.Errorf("debugfs -R %q %s: %s", request, img, strings.TrimSpace(s))
	}
	return out.String(), nil
}

// maxTreeNodes bounds a walk: the images here hold a few dozen names.
const maxTreeNodes = 100000

// ReadTree walks the image from / with debugfs ls -p (lost+found's contents
// are left out).
func ReadTree(img string) (Tree, error) {
	t := Tree{}
	todo := []string{"/"}
	for len(todo) > 0 {
		dir := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		out, err := debugfs(img, "ls -p "+quoteDebugfs(dir))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			// /inode/mode/uid/gid/name/size/
			f := strings.Split(line, "/")
			if len(f) < 7 || f[0] != "" {
				continue
			}
			name := strings.Join(f[5:len(f)-2], "/")
			if name == "." || name == ".." || name == "" {
				continue
			}
			ino, err1 := strconv.ParseUint(f[1], 10, 64)
			mode, err2 := strconv.ParseUint(f[2], 8, 32)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("debugfs ls -p %s: bad line %q", dir, line)
			}
			p := path.Join(dir, name)
			n := Node{Inode: ino}
			switch mode & 0o170000 {
			case 0o040000:
				n.Kind = 'd'
				if p != "/lost+found" {
					todo = append(todo, p)
				}
			case 0o100000:
				n.Kind = 'f'
			case 0o120000:
				n.Kind = 'l'
				if n.Target, err = symlinkTarget(img, p); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("%s: unexpected mode %o", p, mode)
			}
			t[p] = n
			if len(t) > maxTreeNodes {
				return nil, fmt.Errorf("%s: more than %d names", img, maxTreeNodes)
			}
		}
	}
	return t, nil
}

var linkDest = regexp.MustCompile(`Fast link dest: "(.*)"`)

func symlinkTarget(img, p string) (string, error) {
	out, err := debugfs(img, "stat "+quoteDebugfs(p))
	if err != nil {
		return "", err
	}
	if m := linkDest.FindStringSubmatch(out); m != nil {
		return m[1], nil
	}
	// A long target lives in a data block.
	out, err = debugfs(img, "cat "+quoteDebugfs(p))
	if err != nil {
		return "", err
	}
	return out, nil
}

// DirIndexed reports whether folder p carries EXT4_INDEX_FL (an htree).
func DirIndexed(img, p string) (bool, error) {
	out, err := debugfs(img, "stat "+quoteDebugfs(p))
	if err != nil {
		return false, err
	}
	m := regexp.MustCompile(`Flags: 0x([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		return false, fmt.Errorf("debugfs stat %s: no Flags line", p)
	}
	fl, err := strconv.ParseUint(m[1], 16, 32)
	if err != nil {
		return false, err
	}
	return fl&0x1000 != 0, nil
}

func quoteDebugfs(p string) string { return `"` + p + `"` }

// Replay applies the guest's ops to a copy of before. Inode numbers of new
// names are fresh model numbers (above every number in before); a LINK shares
// its target's.
func Replay(before Tree, ops []Op) (Tree, error) {
	t := Tree{}
	var next uint64
	for p, n := range before {
		t[p] = n
		next = max(next, n.Inode)
	}
	parentOK := func(p string) error {
		if d := path.Dir(p); d != "/" && t[d].Kind != 'd' {
			return fmt.Errorf("folder %s does not exist", d)
		}
		if _, ok := t[p]; ok {
			return fmt.Errorf("%s exists already", p)
		}
		return nil
	}
	for _, o := range ops {
		var err error
		switch o.Op {
		case "MKDIR", "MKFILE", "SYMLINK":
			if err = parentOK(o.Path); err == nil {
				next++
				kind := map[string]byte{"MKDIR": 'd', "MKFILE": 'f', "SYMLINK": 'l'}[o.Op]
				t[o.Path] = Node{Kind: kind, Inode: next, Target: o.Target}
			}
		case "LINK":
			src, ok := t[o.Target]
			switch {
			case !ok || src.Kind == 'd':
				err = fmt.Errorf("link target %s is not a file", o.Target)
			default:
				if err = parentOK(o.Path); err == nil {
					t[o.Path] = src
				}
			}
		case "RMFILE":
			if n, ok := t[o.Path]; !ok || n.Kind == 'd' {
				err = fmt.Errorf("%s is not a file", o.Path)
			} else {
				delete(t, o.Path)
			}
		case "RMDIR":
			if n, ok := t[o.Path]; !ok || n.Kind != 'd' {
				err = fmt.Errorf("%s is not a folder", o.Path)
			} else if kids := children(t, o.Path); len(kids) > 0 {
				err = fmt.Errorf("%s is not empty: %v", o.Path, kids)
			} else {
				delete(t, o.Path)
			}
		case "RENAME":
			if _, ok := t[o.Path]; !ok {
				err = fmt.Errorf("%s does not exist", o.Path)
			} else if err = parentOK(o.New); err == nil {
				moved := Tree{}
				for p, n := range t {
					if p == o.Path || strings.HasPrefix(p, o.Path+"/") {
						moved[o.New+strings.TrimPrefix(p, o.Path)] = n
						delete(t, p)
					}
				}
				for p, n := range moved {
					t[p] = n
				}
			}
		default:
			err = fmt.Errorf("unknown op")
		}
		if err != nil {
			return nil, fmt.Errorf("replay %s: %w", o, err)
		}
	}
	return t, nil
}

func children(t Tree, dir string) []string {
	var k []string
	for p := range t {
		if path.Dir(p) == dir {
			k = append(k, p)
		}
	}
	sort.Strings(k)
	return k
}

// CompareTrees checks that the image's tree equals the model: the same
// names of the same kinds, symlinks with the same text, and names that share
// an inode in the model sharing one on the image and no others.
func CompareTrees(model, image Tree) []string {
	var errs []string
	img2model := map[uint64]uint64{}
	model2img := map[uint64]uint64{}
	var paths []string
	for p := range model {
		paths = append(paths, p)
	}
	for p := range image {
		if _, ok := model[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		m, inM := model[p]
		g, inI := image[p]
		switch {
		case !inI:
			errs = append(errs, fmt.Sprintf("%s (%c) is missing on the image", p, m.Kind))
		case !inM:
			errs = append(errs, fmt.Sprintf("%s (%c) is on the image but not in the guest's list", p, g.Kind))
		case m.Kind != g.Kind:
			errs = append(errs, fmt.Sprintf("%s: kind %c on the image, %c in the guest's list", p, g.Kind, m.Kind))
		case m.Kind == 'l' && m.Target != g.Target:
			errs = append(errs, fmt.Sprintf("%s: symlink to %q on the image, %q in the guest's list", p, g.Target, m.Target))
		case m.Kind == 'f':
			if x, ok := model2img[m.Inode]; ok && x != g.Inode {
				errs = append(errs, fmt.Sprintf("%s: inode %d on the image, but it is a hard link of a name with inode %d", p, g.Inode, x))
			}
			if x, ok := img2model[g.Inode]; ok && x != m.Inode {
				errs = append(errs, fmt.Sprintf("%s: inode %d on the image is shared with a name that is not its hard link", p, g.Inode))
			}
			model2img[m.Inode], img2model[g.Inode] = g.Inode, m.Inode
		}
		if len(errs) > 20 {
			return append(errs, "...")
		}
	}
	return errs
}
