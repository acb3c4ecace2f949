package nbd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startServer serves b on a fresh owner-only unix socket and stops the server when
// the test ends. It returns the socket path.
func startServer(t testing.TB, b Backend, opts Options) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "nbd.sock")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logf == nil {
		opts.Logf = func(f string, a ...any) { t.Logf(f, a...) }
	}
	s := NewServer(b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s, sock
}

// newImage creates a file of size bytes filled with a pattern and opens it.
func newImage(t testing.TB, size int) (*FileBackend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

func dial(t testing.TB, sock string, o ClientOptions) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
