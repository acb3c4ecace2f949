// Command kexec-load loads a crash (panic) kernel with kexec_file_load(2)
// and KEXEC_FILE_ON_CRASH, for the kdump test guest (build-kdump.sh): busybox
// has no kexec. It is built static (CGO_ENABLED=0) and runs as the guest's
// /bin/kexec-load:
//
//	kexec-load KERNEL INITRD CMDLINE
//
// The kernel adds elfcorehdr= (and, on x86, the memory map of the
// crashkernel= region) to the capture kernel's command line itself.
// kexec-load -u unloads it again.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-u" {
		if err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_ON_CRASH|unix.KEXEC_FILE_UNLOAD); err != nil {
			fail("unload: %v", err)
		}
		return
	}
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: kexec-load KERNEL INITRD CMDLINE | kexec-load -u")
		os.Exit(2)
	}
	kernel, initrd, cmdline := os.Args[1], os.Args[2], os.Args[3]
	kfd, err := unix.Open(kernel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("%s: %v", kernel, err)
	}
	ifd, err := unix.Open(initrd, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("%s: %v", initrd, err)
	}
	if err := unix.KexecFileLoad(kfd, ifd, cmdline, unix.KEXEC_FILE_ON_CRASH); err != nil {
		// EBUSY: a crash kernel is loaded already; ENOMEM or EADDRNOTAVAIL:
		// crashkernel= reserved too little (or nothing); EKEYREJECTED: a
		// signature was required.
		fail("kexec_file_load(%s, %s, %q, KEXEC_FILE_ON_CRASH): %v", kernel, initrd, cmdline, err)
	}
	fmt.Printf("kexec-load: crash kernel %s loaded\n", kernel)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kexec-load: "+format+"\n", args...)
	os.Exit(1)
}
