# xascript — see README.md. `make test` needs only Go; the guest suites
# (`make test-guests`) need QEMU and friends, installed by `make testdata-deps`.
GO       ?= go
BIN      := bin/xascript
IMAGE    := testdata/images/x86_64-4level
GUESTS_OUT ?= $(CURDIR)/.guests

.PHONY: all build test test-deps test-race vet fmt-check docs demo bench fuzz fuzz-ci testdata testdata-deps test-guests test-kdump e2e-xen e2e-qemu disk-deps e2e-disk bench-disk clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/xascript

# The tests a fresh machine with only Go runs: unit, fixture, CLI golden and
# real-image tests on the committed guest images.
test: vet fmt-check test-deps
	$(GO) test ./...

# The disk tests of `make test` build real ext2/3/4 images with e2fsprogs
# (mkfs.ext4 -d, debugfs, e2fsck). Every Debian system has it (Priority:
# required); this installs it where it is missing.
test-deps:
	@if command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null && command -v e2fsck >/dev/null; then :; else \
		apt-get update && apt-get install -y --no-install-recommends e2fsprogs; \
	fi

# The race detector over the packages where goroutines meet: live targets
# (QMP events arrive on their own goroutine), page walkers over them, the
# runtime's event loop and the bindings, the disk tracker and the NBD server
# (a goroutine per request).
RACE_PKGS ?= ./vmi/qemu/ ./vmi/xen/ ./vmi/paging/ ./runtime/ ./bindings/ ./diskmon ./diskmon/nbd ./diskmon/tapfifo ./diskmon/qmpbitmap ./diskmon/kernelnbd
test-race:
	@command -v gcc >/dev/null || { apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev; }
	CGO_ENABLED=1 $(GO) test -race -count=1 $(RACE_PKGS)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# docs/lua-api.md, docs/lua-libs.md and the editors' LuaLS declarations
# (scripts/types/xascript.lua), all generated; tests fail when one is stale.
docs:
	$(GO) run ./internal/gendocs

# The main job: list the committed guest's kernel modules.
demo: build
	$(BIN) scripts/examples/lkm.lua --file $(IMAGE)/mem.elf.zst

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

FUZZTIME ?= 30s
fuzz:
	@for spec in $$($(GO) test -list 'Fuzz.*' ./... | awk '/^Fuzz/{n[++c]=$$0} /^ok/{for(i=1;i<=c;i++) print $$2":"n[i]; c=0}'); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "== $$pkg $$fn"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg || exit 1; \
	done

# CI's fuzzing: every fuzz target in the repo for FUZZ_CI_TIME each, one
# after another (go test fuzzes one target at a time). Prints each target's
# wall time (build included), fuzzing time and exec count; a target that
# finds a failing input fails the run at the end, after the others ran, with
# its log. Go saves that input under the package's testdata/fuzz/FuzzXxx/:
# commit it with the fix, and every later `go test` replays it. A target
# whose run ends on Go's own "context deadline exceeded" with no failing
# input written (the engine's worker late at -fuzztime's end, seen once
# under load) runs once more.
FUZZ_CI_TIME ?= 30s
FUZZ_CI_PKGS ?= ./...
fuzz-ci:
	@log=$$(mktemp) || exit 1; trap 'rm -f "$$log"' EXIT; \
	specs=$$($(GO) test -list '^Fuzz' $(FUZZ_CI_PKGS) | awk '/^Fuzz/{n[++c]=$$0} /^ok/{for(i=1;i<=c;i++) print $$2":"n[i]; c=0}'); \
	[ -n "$$specs" ] || { echo "fuzz-ci: no fuzz targets found"; exit 1; }; \
	failed=; count=0; \
	fuzz_one() { $(GO) test -run "^$$fn$$" -fuzz "^$$fn$$" -fuzztime $(FUZZ_CI_TIME) -fuzzminimizetime 10s "$$pkg" >"$$log" 2>&1; }; \
	engine_late() { grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written to' "$$log"; }; \
	for spec in $$specs; do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; count=$$((count+1)); start=$$(date +%s); \
		if fuzz_one || { engine_late && echo "     $$fn: Go's fuzz engine ended on 'context deadline exceeded', no failing input: once more" && fuzz_one; }; \
		then st=ok; else st=FAIL; failed="$$failed $$pkg.$$fn"; fi; \
		last=$$(grep -o 'elapsed: [0-9a-z]*, execs: [0-9]*' "$$log" | tail -n 1); \
		printf '%-4s %-32s %-22s %4ds wall  %s\n' "$$st" "$${pkg#github.com/xascript/xascript/}" "$$fn" \
			$$(( $$(date +%s) - start )) "$${last:-no fuzzing status (see log)}"; \
		if [ "$$st" = FAIL ]; then sed 's/^/    /' "$$log" | tail -n 60; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-ci: failing inputs in:$$failed"; exit 1; fi; \
	echo "fuzz-ci: $$count targets, no findings"

# Rebuild every committed guest image from Debian packages (one command).
testdata: testdata-deps
	bash testdata/build-all.sh

# What the guest-building suites need beyond Go (kernels, busybox and pahole
# are fetched as Debian packages and unpacked by testdata/fetch.sh). qemu-utils
# (qemu-img, qemu-io, qemu-nbd) is only a Recommends of qemu-system-x86.
testdata-deps:
	@if command -v qemu-system-x86_64 >/dev/null && command -v qemu-system-i386 >/dev/null && \
	    command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && command -v qemu-nbd >/dev/null && \
	    command -v zstd >/dev/null && command -v python3 >/dev/null; then \
		echo "testdata-deps: already installed"; \
	else \
		apt-get update && apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils zstd python3 ca-certificates; \
	fi

# The heavy suite: build every guest afresh and compare xascript's view of
# each with the ground truth that guest printed.
test-guests: testdata-deps
	rm -rf $(GUESTS_OUT)
	XA_IMAGES_DIR=$(GUESTS_OUT)/images XA_KERNELS_DIR=$(GUESTS_OUT)/kernels XA_ZSTD_LEVEL=3 XA_MAX_FILE=0 \
		bash testdata/build-all.sh
	@# The live QEMU tests (TestGuestLiveQEMU*) are e2e-qemu's: not twice in CI.
	XASCRIPT_IMAGES=$(GUESTS_OUT)/images XASCRIPT_KERNELS=$(GUESTS_OUT)/kernels \
	XASCRIPT_DWARF_VMLINUX=$$(find $(CURDIR)/testdata/.cache -name vmlinux -path '*686-pae*' | head -n 1) \
		$(GO) test -count=1 -tags guests -run 'Guest' -skip 'TestGuestLiveQEMU' -v ./integration/
	@# The DWARF of the -dbg vmlinux against the BTF pahole made from it for
	@# the guest just built: the same kernel, whichever ABI Debian serves now.
	vmlinux=$$(find $(CURDIR)/testdata/.cache -name vmlinux -path '*dbg-*686-pae*' | sort | tail -n 1); \
	ver=$$(basename "$$(dirname "$$vmlinux")"); ver=$${ver#dbg-}; \
	XASCRIPT_DWARF_VMLINUX=$$vmlinux XASCRIPT_DWARF_BTF=$(GUESTS_OUT)/kernels/$$ver/vmlinux.btf.zst \
		$(GO) test -count=1 -run 'TestRealDWARFAgainstBTF' -v ./vmi/linux/dwarfsrc/
	$(GO) test -count=1 -tags guests -run 'TestLiveQEMU' -v ./vmi/qemu/
	$(MAKE) test-kdump

# A real kdump /proc/vmcore: a guest panicked with a capture kernel loaded
# by kexec_file_load, the vmcore copied out by the capture kernel
# (testdata/kdump/README.md); built afresh, not committed.
KDUMP_OUT ?= $(GUESTS_OUT)/kdump
test-kdump: testdata-deps build
	bash testdata/kdump/build-kdump.sh $(KDUMP_OUT)
	XASCRIPT_KDUMP=$(KDUMP_OUT) XASCRIPT_BIN=$(CURDIR)/$(BIN) \
		$(GO) test -count=1 -tags guests -run 'TestKdump' -timeout 10m -v ./integration/

# Real Xen 4.17 under QEMU TCG with a busybox dom0 and a PV and a PVH domU;
# xascript runs in dom0 against each (testdata/xen/README.md). The Debian
# packages are fetched by testdata/fetch.sh, QEMU comes from testdata-deps.
# The serial log stays in XEN_E2E_OUT. The disk test in it (dom0-disk.sh)
# makes its ext4 image and checks the result with e2fsprogs (disk-deps).
XEN_E2E_OUT ?= $(CURDIR)/testdata/.cache/xen-e2e
# The whole boot's bound (xen-e2e.sh's XA_XEN_TIMEOUT): four domUs boot one
# after another under TCG, about a minute each on a loaded 2-core machine.
XA_XEN_TIMEOUT ?= 900
e2e-xen: testdata-deps disk-deps
	bash testdata/xen/xen-e2e.sh images
	XA_XEN_TIMEOUT=$(XA_XEN_TIMEOUT) XA_XEN_OUT=$(XEN_E2E_OUT) $(GO) test -count=1 -tags xen -run 'TestXenE2E' -timeout 30m -v ./integration/xene2e/

# The live QEMU suite on two guests, one with RAM in a shared file and one with
# plain -m RAM read from QEMU's process memory: lkm.lua through bin/xascript
# against the guest's /proc/modules, a module loaded mid-test, QEMU quitting
# under a running script, and the targets' own tests. The guests' folders live
# in a temporary directory until the end, so that every QEMU is stopped by its
# PID and its /dev/shm file removed even when a test fails, times out or is
# interrupted; a guest that does not boot fails the run within minutes.
# TestLiveQEMUChurn churns a guest for XA_CHURN_SECONDS under running monitors.
# TestGuestLiveQEMUProcess reads processes of known content through process()
# and compares their VMAs with the guest's /proc/PID/maps (4-level; 5-level+PTI;
# Debian bullseye's 5.10, whose mappings are on the vm_next list: fetch.sh amd64-5.10;
# 6.12, whose pidfds are pidfs inodes).
# TestLiveQEMUDiskBitmap*: --qemu --drive on a running guest's ext4/ext2 data disk
# (integration/bitmape2e) and the QMP scheme on a bare QEMU (diskmon/qmpbitmap).
E2E_QEMU_TIMEOUT ?= 20m
XA_CHURN_SECONDS ?= 300
e2e-qemu: disk-deps build
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/xa-e2e-qemu.XXXXXX") || exit 1; \
	cleanup() { for g in "$$dir"/*/; do [ -d "$$g" ] && bash testdata/live-guest.sh stop "$$g"; done; rm -rf "$$dir"; }; \
	trap cleanup EXIT; trap 'exit 130' INT TERM; \
	[ -f testdata/.cache/amd64.env ] || bash testdata/fetch.sh amd64 || exit 1; \
	[ -f testdata/.cache/amd64-5.10.env ] || bash testdata/fetch.sh amd64-5.10 || exit 1; \
	[ -f testdata/.cache/amd64-6.12.env ] || bash testdata/fetch.sh amd64-6.12 || exit 1; \
	XA_LIVE_DIR="$$dir" XASCRIPT_BIN="$(CURDIR)/$(BIN)" XA_CHURN_SECONDS=$(XA_CHURN_SECONDS) $(GO) test -count=1 -p 1 -timeout $(E2E_QEMU_TIMEOUT) \
		-tags guests -run 'TestLiveQEMU|TestGuestLiveQEMU' -v ./vmi/qemu/ ./integration/ ./integration/bitmape2e/ ./diskmon/qmpbitmap/ ./integration/fswatche2e/

# The disk suites need, beyond testdata-deps: qemu-nbd and qemu-img (in
# qemu-utils, which qemu-system-x86 only recommends) and e2fsprogs (mkfs.ext2/3/4
# -d, debugfs, e2fsck).
disk-deps: testdata-deps
	@if command -v qemu-nbd >/dev/null && command -v mkfs.ext4 >/dev/null && \
	    command -v debugfs >/dev/null && command -v e2fsck >/dev/null; then \
		echo "disk-deps: already installed"; \
	else \
		apt-get update && apt-get install -y --no-install-recommends qemu-utils e2fsprogs; \
	fi

# The disk monitor end to end (integration/diske2e/doc.go): a Debian guest
# whose ext2, ext3 and ext4 data disks are served over NBD by the tap runs
# the paper's sequence and more; the events must match what the guest did,
# and fsck must be clean; then kill -9 of the tap in XA_KILL_TRIALS trials
# during heavy writes loses nothing the guest had synced. XA_DISK_TAP=qemu-nbd
# runs the same guests on qemu-nbd (no events: the guest side, the image and
# fsck alone).
XA_DISK_TAP ?= xascript
E2E_DISK_TIMEOUT ?= 90m
e2e-disk: disk-deps $(if $(filter xascript,$(XA_DISK_TAP)),build)
	[ -f testdata/.cache/amd64.env ] || bash testdata/fetch.sh amd64
	XA_DISK_TAP=$(XA_DISK_TAP) XASCRIPT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -tags disk \
		-timeout $(E2E_DISK_TIMEOUT) -run 'TestDiskEvents|TestDiskKill' -v ./integration/diske2e/

# The paper's Figure 7 and dd throughput as a table (testdata/disk/fig7.sh);
# the xascript modes run once scripts/examples/diskwatch.lua exists.
bench-disk: disk-deps $(if $(wildcard scripts/examples/diskwatch.lua),build)
	[ -f testdata/.cache/amd64.env ] || bash testdata/fetch.sh amd64
	XASCRIPT_BIN=$(CURDIR)/$(BIN) bash testdata/disk/fig7.sh

clean:
	rm -rf bin $(GUESTS_OUT)
