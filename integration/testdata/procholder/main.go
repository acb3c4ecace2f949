// Command procholder is a process of known content for the live process
// tests (process_live_test.go): run in the guest as `xa-holder TAG
// [FILE...]`, it holds HolderText(TAG) in a heap buffer that spans pages,
// maps three anonymous pages (the first written with "first page TAG", the
// second never touched, the third written and then made PROT_NONE), keeps
// open each FILE (read-only), a pipe and a Unix socket, creates FILE.gone
// next to the first FILE, opens it and unlinks it (so that it shows as
// "(deleted)"), prints
//
//	XA-HOLDER pid=PID heap=ADDR len=N mmap=ADDR
//
// and sleeps for good. Its arguments and environment are what the test
// gave it: the test reads them back. It is built static (CGO_ENABLED=0)
// into the guest's initramfs.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xa-holder TAG [FILE...]")
		os.Exit(2)
	}
	var keep []any
	for _, name := range os.Args[2:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(1)
		}
		keep = append(keep, f)
	}
	if len(os.Args) > 2 {
		gone := os.Args[2] + ".gone"
		f, err := os.Create(gone)
		if err == nil {
			err = os.Remove(gone)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "unlinked file:", err)
			os.Exit(1)
		}
		r, w, err := os.Pipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipe:", err)
			os.Exit(1)
		}
		sock, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "socket:", err)
			os.Exit(1)
		}
		// A pidfd of its own: anon_inode:[pidfd] until 6.8, a pidfs
		// inode from 6.9 (lsof.lua names both as the kernel does).
		pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pidfd_open:", err)
			os.Exit(1)
		}
		keep = append(keep, f, r, w, sock, pidfd)
	}
	tag := os.Args[1]
	// The same text as the test's holderText.
	msg := []byte("XA-PROC-HOLDER " + tag + " " + strings.Repeat(tag+"-", 9000/(len(tag)+1)))
	const page = 4096
	m, err := syscall.Mmap(-1, 0, 3*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmap:", err)
		os.Exit(1)
	}
	copy(m, "first page "+tag+"\x00")
	m[2*page] = 1
	if err := syscall.Mprotect(m[2*page:], syscall.PROT_NONE); err != nil {
		fmt.Fprintln(os.Stderr, "mprotect:", err)
		os.Exit(1)
	}
	fmt.Printf("XA-HOLDER pid=%d heap=%#x len=%d mmap=%#x\n", os.Getpid(), uintptr(unsafe.Pointer(&msg[0])), len(msg), uintptr(unsafe.Pointer(&m[0])))
	for {
		time.Sleep(time.Hour)
		runtime.KeepAlive(msg)
		runtime.KeepAlive(m)
		runtime.KeepAlive(keep)
	}
}
