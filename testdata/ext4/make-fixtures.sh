#!/usr/bin/env bash
# make-fixtures.sh — regenerate the jbd2 fixtures of diskmon/ext4: ext3 and
# ext4 images whose journal holds committed transactions that are not yet
# checkpointed (written to their home blocks), so the only on-disk trace of
# the guest's last changes is in the journal.
#
#   testdata/ext4/make-fixtures.sh        writes testdata/ext4/NAME.img.zst and NAME.truth.txt
#                                         for NAME in ext4-journal ext4-1k-journal
#                                         ext4-inline-journal ext3-journal
#
# How: the host makes a 16 MiB image with mkfs.ext{3,4} -d (a seed tree:
# /keep with two files, /old with one file); a Debian cloud 6.1 guest under
# QEMU TCG (fetch.sh amd64) mounts it with -o commit=1, creates, renames,
# links and removes files (see GUEST below), waits 3 s so jbd2 has committed
# to the journal, prints what it did between @@XA-BEGIN-TRUTH@@ and
# @@XA-END-TRUTH@@ and then @@XA-DONE@@; the host then SIGKILLs QEMU at once,
# so no unmount, no checkpoint: the home blocks still hold the seed tree.
# Each image is checked with `debugfs -R logdump` (the journal must hold
# committed transactions) before it is kept.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TD=$(cd "$HERE/.." && pwd)
CACHE=${XA_TESTDATA_CACHE:-$TD/.cache}
BOOT_TIMEOUT=${XA_BOOT_TIMEOUT:-180}
log() { printf '[ext4-fixtures] %s\n' "$*" >&2; }
die() { printf '[ext4-fixtures] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=../host-lib.sh
source "$TD/host-lib.sh"
trap xa_cleanup EXIT

for t in mkfs.ext3 mkfs.ext4 debugfs zstd qemu-system-x86_64 python3; do
    command -v "$t" >/dev/null || die "$t missing (apt-get install e2fsprogs zstd qemu-system-x86 python3)"
done
[[ -f $CACHE/amd64.env ]] || die "no $CACHE/amd64.env: run testdata/fetch.sh amd64 first"
# shellcheck disable=SC1091
source "$CACHE/amd64.env"
vmlinuz=$KROOT/boot/vmlinuz-$KVER
[[ -f $vmlinuz && -f $BUSYBOX ]] || die "fetch.sh output incomplete; rerun testdata/fetch.sh amd64"

WORK=$(mktemp -d "$(xa_work_base $((64 << 20)))/xa-ext4fix.XXXXXX")
chmod 700 "$WORK"

cat >"$WORK/init" <<'INIT'
#!/bin/sh
. /lib/xa-guest.sh
xa_boot
xa_idle_fd
mkdir -p /mnt
mount -t ext4 -o commit=1 /dev/vda /mnt || { echo "@@XA-FAIL mount@@"; exit 1; }
cd /mnt
# The changes the tests look for in the journal (keep in step with
# journal_test.go).
mkdir new
mkdir new/sub
echo hello >new/a.txt
echo world >new/b.txt
i=0
while [ $i -lt 40 ]; do echo "file $i" >"new/f$i"; i=$((i + 1)); done
# A small folder: with inline_data its entries spill from i_block into
# the system.data xattr.
mkdir new/inl
for i in 1 2 3 4 5 6; do echo "$i" >"new/inl/a$i"; done
# A folder the kernel turns into an htree (more than one block of names).
mkdir new/big
i=0
while [ $i -lt 300 ]; do : >"new/big/entry-with-a-long-name-$i"; i=$((i + 1)); done
# Three transactions: jbd2 (commit=1) commits each batch before the next
# starts; sync would also commit, but we want the kernel's periodic path.
read -r -t 2 _ <&3
mv keep/one.txt new/moved.txt
ln new/a.txt new/hard.txt
ln -s a.txt new/link
ln -s /this/is/a/rather/long/symlink/target/that/does/not/fit/in/the/inode/block/map/area/at/all/xxxxxxxxxxxxxxxxxxxxxxxx new/longlink
read -r -t 2 _ <&3
rm old/gone.txt
rmdir old
read -r -t 3 _ <&3
echo "@@XA-BEGIN-TRUTH@@"
for d in / /keep /new /new/sub /new/inl /new/big; do
    echo "DIR $d"
    ls -ai1 "/mnt$d" | while read -r ino name; do
        case $name in .|..) continue ;; esac
        echo "$ino $name"
    done
done
echo "@@XA-END-TRUTH@@"
echo "@@XA-DONE@@"
read -r _ <&3
INIT

python3 "$TD/guesttool.py" initramfs "$WORK/initramfs.cpio" \
    --busybox "$BUSYBOX" --init "$WORK/init" \
    --kroot "$KROOT" --kver "$KVER" virtio_pci virtio_blk

mkseed() {
    rm -rf "$WORK/seed"
    mkdir -p "$WORK/seed/keep" "$WORK/seed/old"
    echo one >"$WORK/seed/keep/one.txt"
    echo two >"$WORK/seed/keep/two.txt"
    echo gone >"$WORK/seed/old/gone.txt"
}

run() { # NAME MKFS-KIND MKFS-ARGS...
    local name=$1 kind=$2 img=$WORK/$1.img serial=$WORK/$1.serial
    shift 2
    mkseed
    rm -f "$img" "$serial"
    "mkfs.$kind" -q -F "$@" -L xa-fixture -U 0b3ad1f7-6a0c-4c53-9f5e-3d1c2b4a5e6f \
        -E root_owner=0:0 -d "$WORK/seed" "$img" 16M
    qemu-system-x86_64 -accel tcg -smp 1 -cpu qemu64 -m 128M -machine q35 \
        -display none -monitor none -no-reboot -nodefaults \
        -serial "file:$serial" \
        -drive "file=$img,format=raw,if=virtio,cache=writeback" \
        -kernel "$vmlinuz" -initrd "$WORK/initramfs.cpio" \
        -append "console=ttyS0 quiet panic=1 rdinit=/init" </dev/null >"$WORK/qemu.out" 2>&1 &
    QEMU_PID=$!
    local t0=$SECONDS
    while ! grep -qa '^@@XA-DONE@@' "$serial" 2>/dev/null; do
        grep -qa '@@XA-FAIL' "$serial" 2>/dev/null && { cat "$serial" >&2; die "$name: guest failed"; }
        kill -0 "$QEMU_PID" 2>/dev/null || { tail -n 30 "$serial" "$WORK/qemu.out" >&2; die "$name: QEMU exited"; }
        ((SECONDS - t0 < BOOT_TIMEOUT)) || die "$name: guest not done after ${BOOT_TIMEOUT}s"
        sleep 0.1
    done
    # No unmount, no checkpoint: the journal keeps the transactions.
    kill -9 "$QEMU_PID"
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
    local n
    n=$(debugfs -c -R logdump "$img" 2>/dev/null | grep -c 'Found expected sequence.*commit block' || true)
    ((n > 0)) || { debugfs -c -R logdump "$img" >&2; die "$name: journal holds no committed transaction"; }
    log "$name: $n committed transactions in the journal"
    sed -n '/^@@XA-BEGIN-TRUTH@@/,/^@@XA-END-TRUTH@@/p' "$serial" | tr -d '\r' | sed '1d;$d' >"$HERE/$name.truth.txt"
    [[ -s $HERE/$name.truth.txt ]] || die "$name: no truth printed"
    zstd -q -19 -f "$img" -o "$HERE/$name.img.zst"
}

# ext4: 4 KiB blocks, 64bit (64-bit journal tags), metadata_csum (csum v3).
run ext4-journal ext4 -b 4096
# ext4 with 1 KiB blocks and no 64bit: 32-bit tags with csum v3.
run ext4-1k-journal ext4 -b 1024 -O ^64bit
# ext4 with inline_data: small folders and files live in the inode.
run ext4-inline-journal ext4 -b 4096 -O inline_data
# ext3: no checksums, 8-byte tags.
run ext3-journal ext3 -b 4096
log "done: $(ls "$HERE")"
