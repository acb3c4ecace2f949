# guest-lib.sh — what every test guest's /init does first. guesttool.py
# initramfs puts it in each initramfs as /lib/xa-guest.sh; the inits
# (guest-init.sh for captured images, live-guest.sh's, xen/domu-init.sh)
# source it. Busybox ash.

# xa_boot [MODULE...]: busybox applets, /proc /sys /dev, quiet printk, real
# addresses for root, then insmod every module of /modules.order except the
# ones named (held back for a test to load later).
xa_boot() {
    _held=" $* "
    export PATH=/bin
    /bin/busybox --install -s /bin
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    # Keep kernel messages (module banners and the like) out of the data
    # the guest prints.
    echo 1 >/proc/sys/kernel/printk
    # Root sees real addresses in /proc/kallsyms and /proc/modules only with 0.
    echo 0 >/proc/sys/kernel/kptr_restrict
    while read -r _m; do
        case $_held in *" $_m "*) continue ;; esac
        insmod "/lib/modules/$_m.ko" || echo "XA-INSMOD-FAIL $_m"
    done </modules.order
}

# xa_section NAME FILE...: the files between the @@XA-BEGIN-NAME@@ and
# @@XA-END-NAME@@ markers that guesttool.py and the Go tests parse.
xa_section() {
    _name=$1
    shift
    echo "@@XA-BEGIN-$_name@@"
    cat "$@"
    echo "@@XA-END-$_name@@"
}

# xa_idle_fd: fd 3 on a FIFO opened read-write, which never blocks on open
# and never has data: `read <&3` is a fork-free sleep (`read -t N` a timed
# one), so an idle guest's task list stays as printed.
xa_idle_fd() {
    mkfifo /idle
    exec 3<>/idle
}

# xa_tasks_ready: let the kworkers that module loads spawn settle, print the
# task list with shell builtins only (so the tasks printed are this shell,
# pid 1, and kernel threads, as the memory taken next holds them), then
# @@XA-READY@@. Leaves fd 3 open for `read <&3` waits.
xa_tasks_ready() {
    xa_idle_fd
    read -r -t 2 _ <&3
    echo "@@XA-BEGIN-TASKS@@"
    for _d in /proc/[0-9]*; do
        read -r _l <"$_d/stat" 2>/dev/null && echo "$_l"
    done
    echo "@@XA-END-TASKS@@"
    echo "@@XA-READY@@"
}

# xa_truth_sections: what a guest prints about itself for truth.json
# (guesttool.py guest_truth), before its task list.
xa_truth_sections() {
    xa_section VERSION /proc/version
    xa_section CMDLINE /proc/cmdline
    xa_section MODULES /proc/modules
    xa_section IOMEM /proc/iomem
    xa_section ZONES /proc/zoneinfo
    xa_section KALLSYMS /proc/kallsyms
}
