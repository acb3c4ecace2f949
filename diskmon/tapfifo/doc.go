// Package tapfifo reads and writes XenAccess's disk tap records: the stream a
// modified blktap tapdisk wrote to a FIFO for every guest disk request, which
// XenAccess's disk monitor (libxadisk) re-parsed into file system events.
//
// Format (the source is the specification: XenAccess's libxadisk,
// xen/block-logsync.c and xen/block-logaio.c write it, xadisk_core.c reads it; seen in
// the tgnice/xenaccess-clone copy of the XenAccess repository): fixed records of 5009
// bytes, no header, no padding between records:
//
//	offset  size  field
//	0       1     op: 1 = write (the tap logged writes only); we read the other values
//	              of Xen's blkif.h: 0 read, 2 write barrier, 3 flush, 5 discard
//	1       8     first sector (512-byte sectors), host order of the x86 dom0: little-endian
//	9       4     sector count, a C int (little-endian; negative values are refused)
//	13      4096  the first 4 KiB of the request's data
//	4109    900   unused: the tap marshalled 4109 bytes into a 5009-byte buffer
//	              (BUFSIZE) and wrote the whole buffer, so this is stack garbage
//
// tapdisk logged each segment of a blkif request separately, and a segment is at most
// one 4 KiB page, so real streams have counts of 1 to 8 and the data field holds the
// whole write; bytes past count*512 are whatever the tap's buffer held. XenAccess's
// reader took sector/8 as the 4 KiB file system block.
//
// Extensions (xascript writes them; XenAccess's reader treated every record as a
// write, so it never saw them): op 0x80 is WRITE_ZEROES (the range reads back as
// zeroes; the data field is zero), so that NBD's zeroing need not be spelled out as
// megabytes of zero records. Flush records have count 0. Writer splits a write into
// records at 4 KiB boundaries of the disk, each with its complete data, so a 4 KiB
// block always arrives whole in one record, as it did from tapdisk.
//
// Bounds: every field of a record is checked (known op, count within MaxSectors for
// reads and writes, the range inside 2^64 bytes); a bad record is an error that names
// its byte offset in the stream, and the reader stays in step for the next record. A
// stream that ends inside a record is an error naming the offset and length of the
// fragment.
package tapfifo
