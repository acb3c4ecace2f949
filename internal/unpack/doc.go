// Package unpack turns a file that may be compressed into a read-only byte
// slice, decompressing at most once per file.
//
// Memory dumps and kernel files are shipped compressed (a 128 MiB guest image
// is ~10 MB of zstd). Decompressing on every run would cost more than the
// whole introspection job, and seekable compressed formats are not what users
// have. So a compressed file is decompressed once into a cache file, keyed by
// the source's identity (absolute path, size, modification time, device and
// inode), and later runs mmap the cached copy: only the pages a script touches
// are read from disk. Uncompressed files are mmapped directly.
//
// Formats are recognised by magic bytes, never by file name: zstd (RFC 8878),
// xz (tukaani.org/xz/xz-file-format.txt), gzip (RFC 1952) and bzip2.
//
// The cache lives in $XASCRIPT_CACHE_DIR, else $XDG_CACHE_HOME/xascript, else
// ~/.cache/xascript. Entries are written to a temporary file and renamed into
// place, so a reader never sees a partial entry.
//
// Dumps are mostly zero pages, so all-zero 4 KiB blocks are not stored: cache
// entries are sparse files (a 4.5 GiB guest takes ~140 MiB of disk). A flock
// on "<entry>.lock" makes processes that open the same source at once (test
// binaries run in parallel) wait for one copy instead of each writing their
// own. When the cache cannot be written (read-only, disk full) the data is
// produced into anonymous memory instead, again without touching the pages
// of zero blocks.
//
// Decompressed sizes are bounded (Options.MaxSize) because a compressed file
// can be a decompression bomb.
package unpack
