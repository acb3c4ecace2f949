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
// Decompressed sizes are bounded (Options.MaxSize) because a compressed file
// can be a decompression bomb.
package unpack
