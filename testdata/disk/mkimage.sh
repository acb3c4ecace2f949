#!/usr/bin/env bash
# mkimage.sh FS IMG SIZE — a fresh ext2/ext3/ext4 image IMG of SIZE (as
# truncate(1) takes it: 64M, 1G) made by mkfs.FS -d from the tree the disk
# guest's scenarios start from (guest-init.sh):
#   /root/bar   removed by the paper's sequence
#   /root/keep  never touched: an event for it is wrong
#   /other/     outside the watched /root
#   /etc/hostname
# XA_MKFS_OPTS adds options to mkfs (e.g. "-b 4096").
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 ext2|ext3|ext4 IMG SIZE" >&2; exit 2; }
fs=$1 img=$2 size=$3
case $fs in ext2 | ext3 | ext4) ;; *) echo "mkimage.sh: unknown filesystem $fs" >&2; exit 2 ;; esac
tree=$(mktemp -d "${TMPDIR:-/tmp}/xa-disk-tree.XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/root" "$tree/other" "$tree/etc"
echo "the paper's rm target" >"$tree/root/bar"
echo "keep" >"$tree/root/keep"
echo "xa-disk" >"$tree/etc/hostname"
chmod 0700 "$tree/root"
rm -f "$img"
truncate -s "$size" "$img"
# shellcheck disable=SC2086
"mkfs.$fs" -q -F -L xa-disk ${XA_MKFS_OPTS:-} -d "$tree" "$img"
