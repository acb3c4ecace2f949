// Command xascript runs a Lua monitor script against a guest: a memory dump
// today, live Xen and QEMU/KVM guests later.
//
//	xascript SCRIPT [flags] [-- script args]
//	xascript info [flags]
//
// All flags are declared in flags.go, so that targets and profile sources
// added later stay in one place. Exit status: 0 on success, 1 when the script
// fails, 2 on a usage error, 3 when the target or profile cannot be opened,
// 70 on an internal error (a panic that escaped; see recoverPanic).
package main
