#!/usr/bin/env bash
# fetch.sh [amd64|amd64-6.12|amd64-5.10|amd64-generic|i386|i386-686|all|xen] — download the Debian packages the test guests are
# built from, without installing anything system-wide.
#
# Packages are fetched with `apt-get download` against a private apt state
# (own package lists, own cache, empty dpkg status) so neither the host's apt
# configuration nor its installed packages matter, then unpacked with
# `dpkg-deb -x` under the cache dir (default testdata/.cache, override with
# XA_TESTDATA_CACHE).  The result is summed up in $CACHE/<target>.env, which
# build-guest.sh sources.
#
# Two kernel series:
#   amd64, i386, i386-686
#                Debian bookworm's own 6.1: the metapackage
#                (linux-image-cloud-amd64 / linux-image-686-pae /
#                linux-image-686) names the current ABI, and we refuse
#                anything that is not 6.1.0-*.
#   amd64-6.12   the 6.12 series that bookworm carries as a security-suite
#                backport (linux-image-6.12-cloud-amd64 names an ABI such as
#                6.12.117+deb12-cloud-amd64); refused unless it is 6.12.*.
#   amd64-5.10   Debian bullseye's 5.10 cloud kernel, from bullseye's own
#                suites (its own private apt state, apt-amd64@bullseye):
#                the last Debian kernel before the maple tree (6.1), whose
#                processes keep their mappings on the mm->mmap list. Only
#                the live process test boots it; no -dbg (no System.map).
#   amd64-generic
#                only the vmlinuz (and config) of Debian's generic
#                linux-image-6.1.0-N-amd64 with the same ABI as the cloud
#                kernel: XZ with the x86 BCJ filter (the cloud kernel is
#                LZ4), for vmi/linux/kernelimage's BCJ test. No guest is
#                built from it.
# The amd64 targets share one private apt state (amd64 and amd64-6.12 also
# the busybox package).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XA_TESTDATA_CACHE:-$HERE/.cache}
SUITES=${XA_DEBIAN_SUITES:-"bookworm bookworm-updates"}
SECURITY_SUITE=${XA_DEBIAN_SECURITY_SUITE:-bookworm-security}
MIRROR=${XA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${XA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Pin an exact kernel ABI (e.g. 6.1.0-56-cloud-amd64) instead of following the
# metapackage; the archive drops old ABIs, so this works only while it lasts.
AMD64_KVER=${XA_AMD64_KVER:-}
AMD64_612_KVER=${XA_AMD64_612_KVER:-}
AMD64_510_KVER=${XA_AMD64_510_KVER:-}
I386_KVER=${XA_I386_KVER:-}
I386_686_KVER=${XA_I386_686_KVER:-}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[fetch] %s\n' "$*" >&2; }
die() { printf '[fetch] ERROR: %s\n' "$*" >&2; exit 1; }

# An apt state is named ARCH (bookworm's suites) or ARCH@bullseye (that
# release's suites); its folder is $CACHE/apt-STATE.

# apt_opts STATE: options that point apt at a private state.
apt_opts() {
    local arch=${1%@*} d=$CACHE/apt-$1
    printf '%s\n' \
        "-oAPT::Architecture=$arch" "-oAPT::Architectures::=$arch" \
        "-oDir::Etc::SourceList=$d/sources.list" "-oDir::Etc::SourceParts=$d/empty" \
        "-oDir::State::Lists=$d/lists" "-oDir::Cache=$d/cache" \
        "-oDir::State::Status=$d/status" \
        "-oAcquire::Languages=none" "-oAPT::Sandbox::User=root" \
        "-oDebug::NoLocking=1" "-q"
}

# apt_setup STATE: write a sources.list and run `apt-get update` once per day.
apt_setup() {
    local arch=${1%@*} d=$CACHE/apt-$1 s opts suites=$SUITES security=$SECURITY_SUITE
    if [[ $1 == *@* ]]; then
        suites="${1#*@} ${1#*@}-updates" security=${1#*@}-security
    fi
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/empty"
    : >"$d/status"
    opts="arch=$arch"
    [[ -f $KEYRING ]] && opts+=" signed-by=$KEYRING"
    {
        for s in $suites; do echo "deb [$opts] $MIRROR $s main"; done
        echo "deb [$opts] $SECURITY_MIRROR $security main"
    } >"$d/sources.list"
    if [[ -n $(find "$d" -maxdepth 1 -name updated -mmin -1440 2>/dev/null) ]]; then
        return 0
    fi
    log "apt-get update ($1, private lists in $d)"
    local -a o; mapfile -t o < <(apt_opts "$1")
    # A mirror caught mid-sync fails one index (seen: bookworm-security i386);
    # go on with what we got and let the package look-ups below decide.
    if ! apt-get "${o[@]}" update >"$d/update.log" 2>&1; then
        log "warning: apt-get update reported errors (see $d/update.log):"
        grep -E '^(E|W):' "$d/update.log" | head -5 >&2 || true
    fi
    touch "$d/updated"
}

# apt_q ARCH CMD ARGS...: run apt-cache / apt-get with the private state.
apt_q() {
    local arch=$1 tool=$2; shift 2
    local -a o; mapfile -t o < <(apt_opts "$arch")
    "$tool" "${o[@]}" "$@"
}

# kernel_abi ARCH META FLAVOUR [ABI_RE]: the linux-image-ABI-FLAVOUR the
# metapackage depends on; ABI_RE (a sed basic regex, default the 6.1 series'
# "6\.1\.0-[0-9]*") is what the ABI must look like.
kernel_abi() {
    local arch=$1 meta=$2 flavour=$3 re=${4:-'6\.1\.0-[0-9]*'} pkg
    pkg=$(apt_q "$arch" apt-cache depends "$meta" |
        sed -n "s/^ *Depends: \(linux-image-$re-$flavour\)\$/\1/p" | head -1)
    [[ -n $pkg ]] || die "$meta ($arch) does not depend on a linux-image-$re-$flavour"
    echo "${pkg#linux-image-}"
}

# download STATE PKG: fetch PKG's .deb into $CACHE/debs/STATE (once) and print its path.
download() {
    local arch=${1%@*} pkg=$2 dir=$CACHE/debs/$1 ver deb
    mkdir -p "$dir"
    ver=$(apt_q "$1" apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    [[ -n $ver && $ver != "(none)" ]] || die "no candidate for $pkg ($arch)"
    # Debian file names encode the epoch's ':' as '%3a'.
    deb=$dir/${pkg}_${ver//:/%3a}_$arch.deb
    [[ -f $deb ]] || deb=$dir/${pkg}_${ver//:/%3a}_all.deb
    if [[ ! -f $deb ]]; then
        log "download $pkg $ver ($arch)"
        (cd "$dir" && apt_q "$1" apt-get download "$pkg=$ver" >&2)
        deb=$(ls "$dir/${pkg}_${ver//:/%3a}"_*.deb | head -1)
    fi
    echo "$deb"
}

# extract DEB DIR: unpack DEB's file tree into DIR (once).
extract() {
    local deb=$1 dir=$2
    if [[ ! -f $dir/.done ]]; then
        rm -rf "$dir"; mkdir -p "$dir"
        dpkg-deb -x "$deb" "$dir"
        touch "$dir/.done"
    fi
}

# dbg_files ARCH KVER [vmlinux]: stream System.map (and vmlinux if asked) out
# of the kernel's -dbg package into $CACHE/x/ARCH/dbg-KVER.  The .deb (several
# hundred MB) is deleted afterwards; only the extracted files are kept.
dbg_files() {
    local arch=$1 kver=$2 want_vmlinux=${3:-} dbg=$CACHE/x/$1/dbg-$2 deb
    local -a members=("usr/lib/debug/boot/System.map-$kver")
    [[ -n $want_vmlinux ]] && members+=("usr/lib/debug/boot/vmlinux-$kver")
    [[ -f $dbg/.done ]] && return 0
    deb=$(download "$arch" "linux-image-$kver-dbg")
    rm -rf "$dbg"; mkdir -p "$dbg"
    log "extract ${members[*]##*/} from $(basename "$deb")"
    # Members are stored as ./usr/...; match them wherever the prefix varies.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dbg" --wildcards --no-anchored "${members[@]}"
    mv "$dbg/usr/lib/debug/boot/System.map-$kver" "$dbg/System.map"
    [[ -n $want_vmlinux ]] && mv "$dbg/usr/lib/debug/boot/vmlinux-$kver" "$dbg/vmlinux"
    rm -rf "$dbg/usr" "$deb"
    touch "$dbg/.done"
}

# amd64_kernel ENV KVER [STATE]: fetch one amd64 cloud kernel (image,
# System.map, busybox) and write $CACHE/ENV.env. STATE (default amd64) is
# the apt state the kernel comes from; busybox is always bookworm's, and a
# kernel of another release gets no System.map (no -dbg download).
amd64_kernel() {
    local env=$1 kver=$2 state=${3:-amd64} deb
    log "$env kernel: $kver"
    # The signed package holds the same image as -unsigned; either is fine.
    deb=$(download "$state" "linux-image-$kver")
    extract "$deb" "$CACHE/x/amd64/linux-image-$kver"
    deb=$(download amd64 busybox-static)
    extract "$deb" "$CACHE/x/amd64/busybox-static"
    # The System.map in the image package is an 83-byte stub; the real one
    # (with the kallsyms_* table symbols that /proc/kallsyms leaves out) is
    # only in the -dbg package (6.1: 283 MB, 6.12: 318 MB download).
    # The archive keeps -dbg only for recent ABIs: an older kernel (as an
    # unseen-kernel check wants) is built without System.map, which only
    # the truth's cross-checks and the --symbols tests use.
    local map=$CACHE/x/amd64/dbg-$kver/System.map
    if [[ $state != amd64 ]]; then
        map=
    elif [[ -f $CACHE/x/amd64/dbg-$kver/.done ]] || apt_q amd64 apt-cache show "linux-image-$kver-dbg" >/dev/null 2>&1; then
        dbg_files amd64 "$kver"
    else
        log "warning: no linux-image-$kver-dbg in the archive: no System.map for this kernel"
        map=
    fi
    cat >"$CACHE/$env.env" <<EOT
KVER=$kver
KROOT=$CACHE/x/amd64/linux-image-$kver
BUSYBOX=$CACHE/x/amd64/busybox-static/bin/busybox
SYSTEM_MAP=$map
EOT
}

fetch_amd64() {
    apt_setup amd64
    amd64_kernel amd64 "${AMD64_KVER:-$(kernel_abi amd64 linux-image-cloud-amd64 cloud-amd64)}"
}

# The 6.12 ABI is "6.12.<patch>+deb12" (no -N ABI number, unlike 6.1.0-N).
fetch_amd64_612() {
    apt_setup amd64
    amd64_kernel amd64-6.12 "${AMD64_612_KVER:-$(kernel_abi amd64 linux-image-6.12-cloud-amd64 \
        cloud-amd64 '6\.12\.[0-9]*+deb[0-9]*')}"
}

# Bullseye's ABI is "5.10.0-N"; busybox comes from bookworm (amd64 state).
fetch_amd64_510() {
    apt_setup amd64
    apt_setup amd64@bullseye
    amd64_kernel amd64-5.10 "${AMD64_510_KVER:-$(kernel_abi amd64@bullseye linux-image-cloud-amd64 \
        cloud-amd64 '5\.10\.0-[0-9]*')}" amd64@bullseye
}

# The generic 6.1 kernel matching the cloud one (6.1.0-N-cloud-amd64 ->
# 6.1.0-N-amd64). Its .deb is 70 MB, nearly all modules: keep vmlinuz and
# config only, and the SHA-256 of the vmlinux that XZ Utils' own decoder
# (x86 BCJ + LZMA2) gets out of the bzImage payload, as the reference the
# kernelimage test compares its decoder with. Copy the three files to
# testdata/kernels/$KVER/ to update the committed kernel.
fetch_amd64_generic() {
    apt_setup amd64
    local cloud kver dir deb
    cloud=${AMD64_KVER:-$(kernel_abi amd64 linux-image-cloud-amd64 cloud-amd64)}
    kver=${cloud%-cloud-amd64}-amd64
    log "amd64-generic kernel: $kver (cloud: $cloud)"
    command -v xz >/dev/null && command -v python3 >/dev/null ||
        die "amd64-generic needs xz (xz-utils) and python3 for the reference decompression"
    dir=$CACHE/x/amd64/generic-linux-image-$kver
    if [[ ! -f $dir/.done ]]; then
        deb=$(download amd64 "linux-image-$kver")
        rm -rf "$dir"; mkdir -p "$dir"
        log "extract vmlinuz and config from $(basename "$deb")"
        dpkg-deb --fsys-tarfile "$deb" |
            tar -x -C "$dir" --wildcards --no-anchored "boot/vmlinuz-$kver" "boot/config-$kver"
        mv "$dir/boot/vmlinuz-$kver" "$dir/vmlinuz"
        mv "$dir/boot/config-$kver" "$dir/config"
        rm -rf "$dir/boot" "$deb"
        # The payload (boot protocol 2.08+: setup_sects at 0x1f1,
        # payload_offset/length at 0x248/0x24c) is an .xz stream followed by
        # the 4-byte size trailer, which --single-stream ignores.
        python3 - "$dir/vmlinuz" >"$dir/payload.xz" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
setup = b[0x1f1] or 4
off, n = struct.unpack_from("<II", b, 0x248)
start = (setup + 1) * 512 + off
sys.stdout.buffer.write(b[start:start + n])
PY
        xz -dc --single-stream "$dir/payload.xz" | sha256sum | cut -d' ' -f1 >"$dir/vmlinux.sha256"
        rm -f "$dir/payload.xz"
        touch "$dir/.done"
    fi
    cat >"$CACHE/amd64-generic.env" <<EOT
GENERIC_KVER=$kver
GENERIC_VMLINUZ=$dir/vmlinuz
GENERIC_CONFIG=$dir/config
GENERIC_VMLINUX_SHA256=$dir/vmlinux.sha256
EOT
}

# pahole: host tool to turn the PAE kernel's DWARF into BTF.  Run from the
# extracted package with its libraries, so nothing gets installed.
fetch_pahole() {
    local p deb
    for p in pahole libbpf1 libdw1 libelf1; do
        deb=$(download amd64 "$p")
        extract "$deb" "$CACHE/x/amd64/$p"
    done
}

run_pahole() {
    local libs="" p
    for p in pahole libbpf1 libdw1 libelf1; do
        libs+="$CACHE/x/amd64/$p/usr/lib/x86_64-linux-gnu:"
    done
    LD_LIBRARY_PATH=${libs%:} "$CACHE/x/amd64/pahole/usr/bin/pahole" "$@"
}

# fetch_i386 ENV FLAVOUR PINNED_KVER: one i386 kernel flavour (686-pae: PAE
# paging; 686: legacy 32-bit paging with 4 MiB pages) with busybox, its
# System.map and BTF made from its DWARF, summed up in $CACHE/ENV.env.
fetch_i386() {
    local env=$1 flavour=$2 pinned=$3
    apt_setup amd64   # pahole runs on the host
    apt_setup i386
    local kver deb dbg out=$CACHE/x/i386
    kver=${pinned:-$(kernel_abi i386 "linux-image-$flavour" "$flavour")}
    log "$env kernel: $kver"
    deb=$(download i386 "linux-image-$kver")
    extract "$deb" "$out/linux-image-$kver"
    deb=$(download i386 busybox-static)
    extract "$deb" "$out/busybox-static"

    # The -dbg package (~750 MB) has the real System.map and a vmlinux with
    # DWARF; the shipped kernel has neither KALLSYMS_ALL nor BTF.
    dbg_files i386 "$kver" vmlinux
    dbg=$out/dbg-$kver
    if [[ ! -s $dbg/vmlinux.btf ]]; then
        fetch_pahole
        log "pahole --btf_encode_detached (DWARF -> BTF)"
        run_pahole --version >&2
        # No -j: the parallel encoder's type order varies from run to run;
        # single-threaded takes ~20 s and is byte-for-byte reproducible.
        run_pahole --btf_encode_detached="$dbg/vmlinux.btf.tmp" "$dbg/vmlinux" >&2 ||
            die "pahole (dwarves $(run_pahole --version)) could not encode BTF from $dbg/vmlinux"
        mv "$dbg/vmlinux.btf.tmp" "$dbg/vmlinux.btf"
    fi
    cat >"$CACHE/$env.env" <<EOT
KVER=$kver
KROOT=$out/linux-image-$kver
BUSYBOX=$out/busybox-static/bin/busybox
SYSTEM_MAP=$dbg/System.map
VMLINUX_BTF=$dbg/vmlinux.btf
EOT
}

# Xen under QEMU (testdata/xen/): the hypervisor, the toolstack with every
# library package it needs (found by following the lib* dependencies of
# xen-utils-4.17 through apt; testdata/xen/xentool.py checks the ELF NEEDED
# closure when it builds dom0's initramfs), busybox, and the generic kernel for
# dom0 (the cloud kernel lacks CONFIG_XEN_DOM0), of which only vmlinuz,
# drivers/xen/ and the block drivers the disk test needs (nbd, loop,
# xen-blkback) are kept: its .deb is 70 MB, the unpacked modules 400 MB.
# xenstore-utils: the disk test's hotplug script writes the backend's
# physical-device with xenstore-write. The domU kernel is the cloud one of
# the amd64 target.
fetch_xen() {
    apt_setup amd64
    local out=$CACHE/x/amd64 kver deb p d dir libdirs=""
    local -a queue=(xen-utils-4.17 libgcc-s1) pkgs=()
    local -A seen=()
    deb=$(download amd64 xen-hypervisor-4.17-amd64)
    extract "$deb" "$out/xen-hypervisor-4.17-amd64"
    deb=$(download amd64 busybox-static)
    extract "$deb" "$out/busybox-static"
    deb=$(download amd64 xenstore-utils)
    extract "$deb" "$out/xenstore-utils"
    # libgcc-s1: glibc dlopens libgcc_s.so.1 at run time and xl aborts without it.
    while ((${#queue[@]})); do
        p=${queue[0]}; queue=("${queue[@]:1}")
        [[ -n ${seen[$p]:-} ]] && continue
        seen[$p]=1; pkgs+=("$p")
        for d in $(apt_q amd64 apt-cache depends --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances "$p" |
            sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<>]*\)$/\2/p' | grep -E '^(lib|zlib1g$)'); do
            queue+=("$d")
        done
    done
    log "xen toolstack packages: ${pkgs[*]}"
    for p in "${pkgs[@]}"; do
        deb=$(download amd64 "$p")
        extract "$deb" "$out/$p"
        [[ $p == xen-utils-4.17 ]] || libdirs+="$out/$p "
    done
    kver=${XA_XEN_DOM0_KVER:-$(kernel_abi amd64 linux-image-amd64 amd64)}
    dir=$out/dom0-linux-image-$kver
    # .done-blk: the block drivers were added later; a cache without them is refetched.
    if [[ ! -f $dir/.done-blk ]]; then
        deb=$(download amd64 "linux-image-$kver")
        rm -rf "$dir"; mkdir -p "$dir"
        log "extract vmlinuz, drivers/xen and nbd, loop, xen-blkback from $(basename "$deb")"
        dpkg-deb --fsys-tarfile "$deb" |
            tar -x -C "$dir" --wildcards --no-anchored "boot/vmlinuz-$kver" "kernel/drivers/xen/*" \
                "kernel/drivers/block/nbd.ko*" "kernel/drivers/block/loop.ko*" "kernel/drivers/block/xen-blkback/*"
        rm -f "$deb"
        touch "$dir/.done" "$dir/.done-blk"
    fi
    cat >"$CACHE/xen.env" <<EOT
XEN_GZ=$out/xen-hypervisor-4.17-amd64/boot/xen-4.17-amd64.gz
XEN_UTILS=$out/xen-utils-4.17
XEN_LIBROOTS="${libdirs% }"
DOM0_KVER=$kver
DOM0_KROOT=$dir
BUSYBOX=$out/busybox-static/bin/busybox
XENSTORE_UTILS=$out/xenstore-utils
EOT
}

main() {
    local what=${1:-all}
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
        die "needs apt-get and dpkg-deb (a Debian host)"
    mkdir -p "$CACHE"
    case $what in
    amd64) fetch_amd64 ;;
    amd64-6.12) fetch_amd64_612 ;;
    amd64-5.10) fetch_amd64_510 ;;
    amd64-generic) fetch_amd64_generic ;;
    i386) fetch_i386 i386 686-pae "$I386_KVER" ;;
    i386-686) fetch_i386 i386-686 686 "$I386_686_KVER" ;;
    xen) fetch_xen ;;
    all) fetch_amd64; fetch_amd64_612; fetch_i386 i386 686-pae "$I386_KVER"; fetch_i386 i386-686 686 "$I386_686_KVER" ;;
    *) die "usage: $0 [amd64|amd64-6.12|amd64-5.10|amd64-generic|i386|i386-686|all|xen]" ;;
    esac
}

main "$@"
