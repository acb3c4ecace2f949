#!/bin/sh
# /init of the kdump test guest's first kernel (busybox ash), packed by
# build-kdump.sh. Like guest-init.sh it loads the modules of
# /modules.order and prints the guest's own view of itself between
# @@XA-BEGIN-X@@ / @@XA-END-X@@ markers; then, instead of waiting for the
# host, it loads the capture kernel into the crashkernel= region with
# kexec_file_load(2) (/bin/kexec-load, testdata/kdump/kexec-load) and
# panics the kernel through sysrq. The capture kernel (capture-init.sh)
# then copies /proc/vmcore to the virtio disk.
#
# Files build-kdump.sh adds to this initramfs: /bin/kexec-load,
# /kdump/vmlinuz (the same bzImage), /kdump/capture.cpio (the capture
# kernel's initramfs) and /kdump/cmdline (its command line).
. /lib/xa-guest.sh
xa_boot

xa_fail() {
    echo "@@XA-KDUMP-FAIL $*@@"
    poweroff -f
}

xa_truth_sections

read -r crash_size </sys/kernel/kexec_crash_size
echo "XA-KDUMP crashkernel region: $crash_size bytes"
[ "$crash_size" -gt 0 ] || xa_fail "no crashkernel region: crashkernel= found no room (see testdata/kdump/README.md)"
read -r capture_cmdline </kdump/cmdline
/bin/kexec-load /kdump/vmlinuz /kdump/capture.cpio "$capture_cmdline" || xa_fail "kexec-load"
read -r loaded </sys/kernel/kexec_crash_loaded
[ "$loaded" = 1 ] || xa_fail "kexec_crash_loaded is $loaded after kexec-load"
# The kernel has its own copy now (in the crashkernel region, which the
# vmcore leaves out); freeing the tmpfs copies zeroes them (init_on_free=1),
# so the vmcore does not carry 16 MB of incompressible bzImage.
rm -f /kdump/vmlinuz /kdump/capture.cpio /bin/kexec-load

# From here on only shell builtins run, so the task list is what the
# vmcore holds (the crashing task is this shell, pid 1).
xa_tasks_ready

# Panic: the kernel jumps into the capture kernel (crash_kexec).
echo c >/proc/sysrq-trigger
xa_fail "still running after sysrq-trigger c"
