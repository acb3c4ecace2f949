// Command procholder is a process of known content for the live process
// tests (process_live_test.go): run in the guest as `xa-holder TAG`, it
// holds HolderText(TAG) in a heap buffer that spans pages, maps three
// anonymous pages (the first written with "first page TAG", the second
// never touched, the third written and then made PROT_NONE), prints
//
//	XA-HOLDER pid=PID heap=ADDR len=N mmap=ADDR
//
// and sleeps for good. It is built static (CGO_ENABLED=0) into the guest's
// initramfs.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: xa-holder TAG")
		os.Exit(2)
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
	}
}
