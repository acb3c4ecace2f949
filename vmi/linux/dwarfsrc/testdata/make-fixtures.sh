#!/bin/sh
# make-fixtures.sh: rebuild the DWARF fixtures and the offsets they must
# yield, with the host's gcc and ld (GCC 12 / binutils 2.40 made the
# committed ones: DWARF 5).
#
#   fixtureNN.o    two compile units joined by ld -r: relocatable, so
#                  dwarfsrc reads them through debug/elf (whole mode)
#   fixtureNN.elf  the same linked into an executable: read in place,
#                  one dwarf.Data per unit (the path a vmlinux takes)
#   expected.txt   "mNN offsetof TYPE PATH N" / "mNN sizeof TYPE N" lines,
#                  from the compiler itself (expected.c, never run)
set -eu
cd "$(dirname "$0")"
: >expected.txt
for bits in 32 64; do
    emu=elf_x86_64
    [ $bits = 32 ] && emu=elf_i386
    gcc -m$bits -g -O0 -fno-asynchronous-unwind-tables -c fixture2.c -o fixture2-$bits.o
    gcc -m$bits -g -O0 -fno-asynchronous-unwind-tables -c fixture.c -o fixture-$bits.o
    ld -m $emu -r fixture2-$bits.o fixture-$bits.o -o fixture$bits.o
    ld -m $emu -e 0 -o fixture$bits.elf fixture2-$bits.o fixture-$bits.o
    strip --only-keep-debug fixture$bits.elf -o fixture$bits.elf.tmp && mv fixture$bits.elf.tmp fixture$bits.elf
    rm fixture2-$bits.o fixture-$bits.o
    # expected.c asks about struct only_here too, which fixture2.c defines.
    { cat fixture2.c; cat expected.c; } | gcc -m$bits -S -x c -I. - -o - |
        sed -n "s/^@@ /m$bits /p" >>expected.txt
done
