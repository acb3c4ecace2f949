// Package progress reports long one-time work on stderr: decompressing a
// multi-GiB dump, deriving a kernel profile from memory, indexing a debug
// vmlinux's DWARF. Later runs use caches, so this is what a first run
// spends its time on, and a user staring at a silent terminal for a minute
// would think it hung.
//
// A Meter writes to one stream in one of two forms:
//   - a terminal: a bar redrawn in place (carriage return, erase to end of
//     line) at most every Interval, with the percentage, the rate and the
//     time left when the step knows its total, and the amount done, rate
//     and time spent when it does not;
//   - anything else (a log file, a pipe): nothing while the step runs,
//     then one line when it ends.
//
// Both forms end a step with the same one line ("xascript: mem.elf.zst:
// decompressed 4.1 GiB in 12.3 s (later runs use the cache)"). Steps that
// end within Delay show nothing at all: a warm run stays silent. A nil
// *Meter, as the CLI's --quiet gives, reports nothing, and so does the nil
// *Bar it returns: code that reports progress needs no checks.
//
// It is a small package of its own rather than a bar library
// (schollz/progressbar, vbauerster/mpb): those draw but do not give the
// non-terminal one-line form or the silence of quick steps, which is most
// of what is needed here, and a redraw is forty lines.
package progress
