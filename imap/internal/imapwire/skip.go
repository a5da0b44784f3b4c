package imapwire

// mailyard: this file is ours, not upstream's.

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// tailSize is how many of a line's last bytes the decoder keeps: enough for
// a literal's header with the longest size Skip accepts ("~{" 19 digits
// "+}" SP CR).
const tailSize = 64

// maxSizeDigits is the most digits of a literal size Skip reads; more do
// not fit an int64.
const maxSizeDigits = 19

// SkipError is returned by Skip when the rest of a command cannot be
// skipped: it is longer than the limit, or a literal's size cannot be
// read. The connection cannot find the next command and must be closed.
type SkipError struct {
	Message string
}

func (err *SkipError) Error() string {
	return "imapwire: " + err.Message
}

// AtCommandEnd reports whether the decoder stopped right after the CRLF
// that ends a command, with no literal open.
func (dec *Decoder) AtCommandEnd() bool {
	return dec.crlf && dec.open == nil
}

// Skip reads and discards what remains of a command that failed, so that
// the next byte read is the first of the client's next command; see the
// package documentation for the rules. It reads at most limit bytes (the
// rest of the line and the data of the literals in it, data of an open
// literal included) and returns a *SkipError beyond that, or when a
// literal's size cannot be read. The decoder is not usable afterwards.
//
// The command ends where the client will go on with its next one:
//   - right away if the command's final CRLF was read already;
//   - after the data of a literal that is open, unless it is a
//     synchronising literal that was not accepted (LiteralReader.Accept):
//     the client sends such data only after a continuation request
//     (RFC 9051 §4.3), and none was sent;
//   - at the end of the line, but a line ending in a non-synchronising
//     literal's header ("{" number "+}", RFC 7888) goes on after the
//     literal's data, which is skipped too; one ending in a synchronising
//     literal's header ends the command, since no continuation request
//     follows.
func (dec *Decoder) Skip(limit int64) error {
	budget := limit
	if lit := dec.open; lit != nil {
		lit.cancel()
		if !lit.nonSync && !lit.accepted {
			return nil
		}
		if lit.r.N > budget {
			return &SkipError{Message: fmt.Sprintf("literal of %d bytes not skipped (limit %d)", lit.size, limit)}
		}
		budget -= lit.r.N
		if _, err := io.CopyN(io.Discard, dec.r, lit.r.N); err != nil {
			return err
		}
		dec.resetTail()
	} else if dec.crlf {
		return nil
	}
	for {
		for {
			b, err := dec.r.ReadByte()
			if err != nil {
				return err
			}
			if budget--; budget < 0 {
				return &SkipError{Message: fmt.Sprintf("command longer than %d bytes not skipped", limit)}
			}
			if b == '\n' {
				break
			}
			dec.remember(b)
		}
		size, nonSync, ok, err := literalHeaderAtEnd(dec.tail[:dec.ntail], dec.tailCut)
		dec.resetTail()
		if err != nil || !ok || !nonSync {
			return err
		}
		if size > budget {
			return &SkipError{Message: fmt.Sprintf("literal of %d bytes not skipped (limit %d)", size, limit)}
		}
		budget -= size
		if _, err := io.CopyN(io.Discard, dec.r, size); err != nil {
			return err
		}
	}
}

// literalHeaderAtEnd reports whether line (without its LF) ends with a
// literal's header, "{" number ["+"] "}" followed by what CRLF accepts
// (an optional SP and CR). It is an error when the line ends with "}"
// after more digits than an int64 holds, or after digits that reach the
// start of a line whose beginning was cut off.
func literalHeaderAtEnd(line []byte, cut bool) (size int64, nonSync, ok bool, err error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	line = bytes.TrimSuffix(line, []byte{' '})
	if !bytes.HasSuffix(line, []byte{'}'}) {
		return 0, false, false, nil
	}
	line = line[:len(line)-1]
	if bytes.HasSuffix(line, []byte{'+'}) {
		nonSync = true
		line = line[:len(line)-1]
	}
	i := len(line)
	for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
		i--
	}
	digits := line[i:]
	if len(digits) == 0 {
		return 0, false, false, nil // an atom that ends with "}"
	}
	if (i == 0 && cut) || len(digits) > maxSizeDigits {
		return 0, false, false, &SkipError{Message: "literal size not readable"}
	}
	if i == 0 || line[i-1] != '{' {
		return 0, false, false, nil
	}
	size, perr := strconv.ParseInt(string(digits), 10, 64)
	if perr != nil {
		return 0, false, false, &SkipError{Message: "literal size not readable"}
	}
	return size, nonSync, true, nil
}
