package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Truth is what a test guest printed about itself (testdata/README.md).
type Truth struct {
	Variant       string            `json:"variant"`
	Arch          string            `json:"arch"`
	KernelRelease string            `json:"kernel_release"`
	Banner        string            `json:"banner"`
	Paging        string            `json:"paging"`
	Cmdline       string            `json:"cmdline"` // the kernel's /proc/cmdline
	CPU           map[string]string `json:"cpu"`
	Modules       []string          `json:"modules"`
	// ModuleList is /proc/modules as the guest printed it.
	ModuleList []struct {
		Name     string `json:"name"`
		Size     uint64 `json:"size"`
		Address  string `json:"address"`
		Refcount int    `json:"refcount"`
	} `json:"module_list"`
	Tasks []struct {
		PID  int    `json:"pid"`
		Comm string `json:"comm"`
	} `json:"tasks"`
	Symbols map[string]string `json:"symbols"`
}

// Image is one captured guest: its files and truth.
type Image struct {
	Dir     string
	Kernels string
	Truth   Truth
}

func imagesRoot() string {
	if d := os.Getenv("XASCRIPT_IMAGES"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "images")
}

func kernelsRoot() string {
	if d := os.Getenv("XASCRIPT_KERNELS"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "kernels")
}

// LoadImage reads the variant's truth.json.
func LoadImage(variant string) (*Image, error) {
	dir := filepath.Join(imagesRoot(), variant)
	data, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		return nil, err
	}
	img := &Image{Dir: dir, Kernels: filepath.Join(kernelsRoot())}
	if err := json.Unmarshal(data, &img.Truth); err != nil {
		return nil, fmt.Errorf("%s/truth.json: %w", dir, err)
	}
	if len(img.Truth.Modules) < 10 {
		return nil, fmt.Errorf("%s/truth.json lists %d modules; the guests load at least 10", dir, len(img.Truth.Modules))
	}
	return img, nil
}

// Path names a file of the image.
func (img *Image) Path(name string) string { return filepath.Join(img.Dir, name) }

// KernelFile names a file of the image's kernel.
func (img *Image) KernelFile(name string) string {
	return filepath.Join(img.Kernels, img.Truth.KernelRelease, name)
}

// Hex parses one of truth.json's hex strings.
func Hex(s string) (uint64, error) {
	return strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
}

// Exists reports whether the image has a file.
func (img *Image) Exists(name string) bool {
	_, err := os.Stat(img.Path(name))
	return err == nil
}
