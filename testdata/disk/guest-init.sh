#!/bin/sh
# /init of the disk guest (busybox ash): mounts its data disk /dev/vda (the
# image under test, served by the tap or by QEMU itself) on /mnt and runs one
# scenario, chosen on the kernel command line. Image paths are what the guest
# prints: /mnt/root/foo is printed /root/foo, as the tap sees it.
#
#   xa.mode=events  the paper's sequence and more (see run_events); every op
#                   is printed, in order, as "XA-DID STEP OP PATH" where STEP
#                   counts the syncs before it (ops of one step reach the disk
#                   together, at the sync that ends the step)
#   xa.mode=kill    writes files of known content for ever, fsyncs each and
#                   its folder, and prints "XA-SYNCED NAME SIZE SHA256" once
#                   the fsyncs returned (the host kills the tap meanwhile)
#   xa.mode=bench   Figure 7 of the paper: N empty files in a fresh folder and
#                   sync, timed in the guest, xa.runs times for each N of xa.ns;
#                   then xa.ddruns times dd xa.ddmb MiB with oflag=direct
#   xa.fs=ext2|ext3|ext4 the filesystem type to mount
#
# Markers: XA-UP (disk mounted; with the guest's uptime), XA-FAIL (an op
# failed: the run is invalid), XA-DONE (all done; the disk is unmounted
# next and the guest powers off).
. /lib/xa-guest.sh
xa_boot

MODE=none FS=ext4 RUNS=10 NS=100,1000,10000 DDMB=256 DDRUNS=1
read -r _cmdline </proc/cmdline
for _w in $_cmdline; do
    case $_w in
    xa.mode=*) MODE=${_w#xa.mode=} ;;
    xa.fs=*) FS=${_w#xa.fs=} ;;
    xa.runs=*) RUNS=${_w#xa.runs=} ;;
    xa.ns=*) NS=${_w#xa.ns=} ;;
    xa.ddmb=*) DDMB=${_w#xa.ddmb=} ;;
    xa.ddruns=*) DDRUNS=${_w#xa.ddruns=} ;;
    esac
done

M=/mnt
STEP=1

# now_ns: NOW_NS = the monotonic clock in ns, from /proc/timer_list's third
# line ("now at N nsecs"), with builtins only: no fork inside a timing.
now_ns() {
    { read -r _; read -r _; read -r _ _ NOW_NS _; } </proc/timer_list
}

off() {
    echo "XA-DONE"
    cd /
    umount $M || echo "XA-FAIL $STEP umount"
    sync
    poweroff -f
    while :; do read -r _ <&3; done
}

fail() {
    echo "XA-FAIL $STEP $*"
}

did() {
    echo "XA-DID $STEP $*"
}

# step_sync: end the step; the ops printed so far are on the disk when sync
# returns.
step_sync() {
    sync || fail sync
    STEP=$((STEP + 1))
}

op_mkdir() { mkdir "$M$1" && did MKDIR "$1" || fail MKDIR "$1"; }
op_rmdir() { rmdir "$M$1" && did RMDIR "$1" || fail RMDIR "$1"; }
op_touch() { touch "$M$1" && did MKFILE "$1" || fail MKFILE "$1"; }
op_rm() { rm "$M$1" && did RMFILE "$1" || fail RMFILE "$1"; }
op_mv() { mv "$M$1" "$M$2" && did RENAME "$1" -\> "$2" || fail RENAME "$1" "$2"; }
op_ln() { ln "$M$1" "$M$2" && did LINK "$2" = "$1" || fail LINK "$2"; }
# SYMLINK PATH = TARGET (the target text, relative to PATH's folder)
op_symlink() { ln -s "$1" "$M$2" && did SYMLINK "$2" = "$1" || fail SYMLINK "$2"; }

# run_events: the paper's Program 5.2 sequence, then nested folders, renames
# (file, folder, across folders), hard links and symlinks, /other (outside
# the watched tree), and 10,000 files in one folder (an htree) created and
# deleted. The image was made from testdata/disk/tree.sh.
run_events() {
    cd $M/root || fail cd
    # 1: the paper: mkdir foo; touch dummy; rm bar; sync
    op_mkdir /root/foo
    op_touch /root/dummy
    op_rm /root/bar
    step_sync
    # 2: a new subtree in one step, and changes outside /root
    op_mkdir /root/a
    op_mkdir /root/a/b
    op_mkdir /root/a/b/c
    op_touch /root/a/b/c/deep
    op_mkdir /other/new
    op_touch /other/new/y
    step_sync
    op_mv /root/dummy /root/dummy2
    step_sync
    op_mv /root/foo /root/foo2
    step_sync
    op_mv /root/a/b/c/deep /root/deep
    step_sync
    op_ln /root/dummy2 /root/hl
    op_symlink dummy2 /root/sl
    step_sync
    # inside a renamed folder
    op_mkdir /root/foo2/sub
    op_touch /root/foo2/sub/x
    step_sync
    op_rm /root/foo2/sub/x
    op_rmdir /root/foo2/sub
    op_rmdir /root/a/b/c
    step_sync
    op_ln /root/deep /root/hl2
    op_symlink a/b /root/sl2
    step_sync
    # a symlink and one name of a hard-linked file go away
    op_rm /root/hl2
    op_rm /root/sl2
    step_sync
    op_mkdir /root/big
    step_sync
    # 10,000 files: the folder becomes an htree. Builtins only, no fork per
    # file; printed as one range line.
    _i=1 _n=${XA_BIG:-10000}
    while [ $_i -le $_n ]; do
        : >"$M/root/big/f$_i" || { fail MKFILE /root/big/f$_i; break; }
        _i=$((_i + 1))
    done
    echo "XA-DID-RANGE $STEP MKFILE /root/big/f 1 $_n"
    step_sync
    cd $M/root/big || fail cd
    rm -f f* || fail RMFILE /root/big/f
    cd $M/root || fail cd
    echo "XA-DID-RANGE $STEP RMFILE /root/big/f 1 $_n"
    step_sync
}

# run_kill: files w1, w2, ... of 4 KiB to 1 MiB of random bytes; after
# each, fsync the file and its folder and print what is now durable. A
# second writer rewrites an unsynced 16 MiB file meanwhile, so the disk is
# busy whenever the host strikes. Stops at the first I/O error.
run_kill() {
    mkdir -p $M/kill && sync || fail mkdir
    ( while :; do dd if=/dev/zero of=$M/kill/bg bs=1M count=16 2>/dev/null || break; done ) &
    echo "XA-WRITING"
    _i=1
    while [ $_i -le 100000 ]; do
        _f=$M/kill/w$_i
        _c=$((1 + (_i * 37) % 256))
        if ! dd if=/dev/urandom of=$_f bs=4k count=$_c 2>/dev/null; then
            echo "XA-IOERR write w$_i"
            break
        fi
        if ! sync $_f $M/kill; then
            echo "XA-IOERR sync w$_i"
            break
        fi
        set -- $(sha256sum $_f)
        echo "XA-SYNCED w$_i $((_c * 4096)) $1"
        _i=$((_i + 1))
    done
    while :; do read -r _ <&3; done
}

# run_bench: Figure 7: for each N, xa.runs times: a fresh folder
# /root/fig7/nN-rR, then (timed) N empty files and sync; the folder is
# emptied and removed after each run, untimed. Then xa.ddruns times dd
# (each on a fresh file, removed and synced after it).
run_bench() {
    mkdir -p $M/root/fig7 && sync || fail mkdir
    for _n in $(echo $NS | tr , ' '); do
        _r=1
        while [ $_r -le $RUNS ]; do
            _d=$M/root/fig7/n$_n-r$_r
            mkdir $_d && sync || fail mkdir $_d
            now_ns
            _t0=$NOW_NS
            _i=1
            while [ $_i -le $_n ]; do
                : >"$_d/f$_i" || { fail MKFILE $_d/f$_i; break; }
                _i=$((_i + 1))
            done
            sync
            now_ns
            echo "XA-FIG7 $_n $_r $((NOW_NS - _t0))"
            rm -rf $_d && sync || fail rm $_d
            _r=$((_r + 1))
        done
    done
    _r=1
    while [ $_r -le $DDRUNS ]; do
        sync
        now_ns
        _t0=$NOW_NS
        dd if=/dev/zero of=$M/dd.bin bs=1M count=$DDMB oflag=direct 2>/dev/null || fail dd
        sync
        now_ns
        echo "XA-DD $DDMB $((NOW_NS - _t0))"
        rm -f $M/dd.bin
        _r=$((_r + 1))
    done
}

xa_idle_fd
_i=0
while [ ! -b /dev/vda ] && [ $_i -lt 100 ]; do
    read -r -t 0.1 _ <&3
    _i=$((_i + 1))
done
mkdir -p $M
mount -t "$FS" /dev/vda $M || { echo "XA-FAIL 0 mount /dev/vda as $FS"; off; }
read -r _up _ </proc/uptime
echo "XA-UP $MODE $FS $_up"
case $MODE in
events) run_events ;;
kill) run_kill ;;
bench) run_bench ;;
*) fail "unknown xa.mode=$MODE" ;;
esac
off
