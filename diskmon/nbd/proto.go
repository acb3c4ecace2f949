package nbd

import "fmt"

// Wire constants of the NBD protocol (doc/proto.md of NetworkBlockDevice/nbd). Every
// number is big-endian on the wire.
const (
	magicInit        = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt         = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply    = 0x0003e889045565a9
	magicRequest     = 0x25609513
	magicSimpleReply = 0x67446698
	magicStructReply = 0x668e33ef

	// Handshake flags (server) and client flags.
	flagFixedNewstyle  = 1 << 0
	flagNoZeroes       = 1 << 1
	flagCFixedNewstyle = 1 << 0
	flagCNoZeroes      = 1 << 1

	// Options.
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10

	// Option replies.
	repAck           = 1
	repServer        = 2
	repInfo          = 3
	repMetaContext   = 4
	repErrUnsup      = 1<<31 + 1
	repErrPolicy     = 1<<31 + 2
	repErrInvalid    = 1<<31 + 3
	repErrUnknown    = 1<<31 + 6
	repErrShutdown   = 1<<31 + 7
	repErrTooBig     = 1<<31 + 9
	repErrorBit      = 1 << 31
	infoExport       = 0
	infoName         = 1
	infoDescription  = 2
	infoBlockSize    = 3
	infoExportLength = 12
	infoBlockSizeLen = 14
)

// Transmission flags, sent in NBD_INFO_EXPORT or after NBD_OPT_EXPORT_NAME.
const (
	FlagHasFlags        = 1 << 0
	FlagReadOnly        = 1 << 1
	FlagSendFlush       = 1 << 2
	FlagSendFUA         = 1 << 3
	FlagRotational      = 1 << 4
	FlagSendTrim        = 1 << 5
	FlagSendWriteZeroes = 1 << 6
	FlagSendDF          = 1 << 7
	FlagCanMultiConn    = 1 << 8
	FlagSendCache       = 1 << 10
	FlagSendFastZero    = 1 << 11
)

// Command flags of a request.
const (
	CmdFlagFUA      = 1 << 0
	CmdFlagNoHole   = 1 << 1
	CmdFlagDF       = 1 << 2
	CmdFlagReqOne   = 1 << 3
	CmdFlagFastZero = 1 << 4
)

// Structured reply chunk types and flags.
const (
	replyFlagDone        = 1 << 0
	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeOffsetHole  = 2
	replyTypeBlockStatus = 5
	replyTypeError       = 1<<15 + 1
	replyTypeErrorOffset = 1<<15 + 2
	replyTypeErrorBit    = 1 << 15
)

// Errno values of the protocol (not the host's errno, although they match Linux's).
const (
	EPERM     = 1
	EIO       = 5
	ENOMEM    = 12
	EINVAL    = 22
	ENOSPC    = 28
	EOVERFLOW = 75
	ENOTSUP   = 95
	ESHUTDOWN = 108
)

// Size limits. MaxPayload is the protocol's interoperable default (2^25): every client
// keeps READ and WRITE within it, and it bounds what one request may make us allocate.
const (
	MaxPayload         = 32 << 20
	preferredBlockSize = 4096
	maxStringLen       = 4096    // the spec's hard limit for names and messages
	maxOptionLen       = 1 << 16 // GO with 4096-byte name and a long info list fits easily
	maxOptions         = 1024    // options before transmission; a client needs a handful
	requestHeaderLen   = 28
	simpleReplyLen     = 16
	structHeaderLen    = 20
)

// Op is an NBD transmission command (NBD_CMD_*); the values are the protocol's.
type Op uint16

const (
	OpRead        Op = 0
	OpWrite       Op = 1
	OpDisc        Op = 2
	OpFlush       Op = 3
	OpTrim        Op = 4
	OpCache       Op = 5
	OpWriteZeroes Op = 6
	OpBlockStatus Op = 7
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "READ"
	case OpWrite:
		return "WRITE"
	case OpDisc:
		return "DISC"
	case OpFlush:
		return "FLUSH"
	case OpTrim:
		return "TRIM"
	case OpCache:
		return "CACHE"
	case OpWriteZeroes:
		return "WRITE_ZEROES"
	case OpBlockStatus:
		return "BLOCK_STATUS"
	}
	return fmt.Sprintf("CMD_%d", uint16(o))
}

// Error is an error reply from the other end: an NBD errno and, with structured
// replies, the server's message.
type Error struct {
	Errno   uint32
	Message string
}

func (e *Error) Error() string {
	name := errnoName(e.Errno)
	if e.Message != "" {
		return fmt.Sprintf("nbd: %s: %s", name, e.Message)
	}
	return "nbd: " + name
}

func errnoName(n uint32) string {
	switch n {
	case EPERM:
		return "EPERM"
	case EIO:
		return "EIO"
	case ENOMEM:
		return "ENOMEM"
	case EINVAL:
		return "EINVAL"
	case ENOSPC:
		return "ENOSPC"
	case EOVERFLOW:
		return "EOVERFLOW"
	case ENOTSUP:
		return "ENOTSUP"
	case ESHUTDOWN:
		return "ESHUTDOWN"
	}
	return fmt.Sprintf("errno %d", n)
}
