package imapwire

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapnum"
	"github.com/mailyard/mailyard/imap/internal/utf7"
)

// MaxDepth bounds how deeply a command may nest: parenthesised lists and
// the operands of recursive grammar rules (SEARCH's NOT and OR) together.
// Deeper input fails with a DecoderExpectError (answered BAD) instead of
// growing the stack without bound. mailyard: upstream counted lists only,
// and failed with an error that was answered NO [SERVERBUG].
const MaxDepth = 1000

// IsAtomChar returns true if ch is an ATOM-CHAR.
func IsAtomChar(ch byte) bool {
	switch ch {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	default:
		return !unicode.IsControl(rune(ch))
	}
}

// Is non-empty char
func isAStringChar(ch byte) bool {
	return IsAtomChar(ch) || ch == ']'
}

// DecoderExpectError is an error due to the Decoder.Expect family of methods.
type DecoderExpectError struct {
	Message string
}

func (err *DecoderExpectError) Error() string {
	return fmt.Sprintf("imapwire: %v", err.Message)
}

// A Decoder reads IMAP data.
//
// There are multiple families of methods:
//
//   - Methods directly named after IMAP grammar elements attempt to decode
//     said element, and return false if it's another element.
//   - "Expect" methods do the same, but set the decoder error (see Err) on
//     failure.
type Decoder struct {
	// CheckBufferedLiteralFunc is called when a literal is about to be decoded
	// and needs to be fully buffered in memory.
	CheckBufferedLiteralFunc func(size int64, nonSync bool) error
	// MaxSize defines a maximum number of bytes to be read from the input.
	// Buffered literals (Literal) count, those read through a
	// LiteralReader do not. mailyard: upstream left out all literals, so
	// that a command could buffer thousands of them.
	MaxSize int64

	r         *bufio.Reader
	side      ConnSide
	err       error
	crlf      bool
	listDepth int
	readBytes int64

	// mailyard: open is the literal whose header was read and whose data
	// was not read to its end, nil if none; no other element is decoded
	// while it is open. tail holds the last bytes read since the start
	// of the current line or the end of the last literal, so that Skip
	// can tell whether the line ended with a literal's header.
	open    *LiteralReader
	tail    [tailSize]byte
	ntail   int
	tailCut bool // bytes were dropped from the start of tail
}

// NewDecoder creates a new decoder.
func NewDecoder(r *bufio.Reader, side ConnSide) *Decoder {
	return &Decoder{r: r, side: side}
}

// mustUnreadByte puts back the byte just read. It follows a successful
// read, so bufio.Reader.UnreadByte does not fail; if it did, the error
// is recorded and nothing more is decoded (mailyard: upstream
// panicked).
func (dec *Decoder) mustUnreadByte() {
	if err := dec.r.UnreadByte(); err != nil {
		dec.returnErr(fmt.Errorf("imapwire: failed to unread byte: %w", err))
		return
	}
	dec.readBytes--
	if dec.ntail > 0 {
		dec.ntail--
	}
}

// resetTail starts a new line, or the part of a line after a literal.
func (dec *Decoder) resetTail() {
	dec.ntail = 0
	dec.tailCut = false
}

// remember adds b to the tail of the current line.
func (dec *Decoder) remember(b byte) {
	if dec.ntail == len(dec.tail) {
		copy(dec.tail[:], dec.tail[len(dec.tail)/2:])
		dec.ntail = len(dec.tail) / 2
		dec.tailCut = true
	}
	dec.tail[dec.ntail] = b
	dec.ntail++
}

// Err returns the decoder error, if any.
func (dec *Decoder) Err() error {
	return dec.err
}

func (dec *Decoder) returnErr(err error) bool {
	if err == nil {
		return true
	}
	if dec.err == nil {
		dec.err = err
	}
	return false
}

func (dec *Decoder) readByte() (byte, bool) {
	// mailyard: nothing more is read once an error is recorded: the
	// bytes that follow may be a refused literal's data or the client's
	// next command, and only Skip knows which.
	if dec.err != nil {
		return 0, false
	}
	if dec.MaxSize > 0 && dec.readBytes > dec.MaxSize {
		// mailyard: the client's error, answered BAD (was SERVERBUG).
		return 0, dec.returnErr(&DecoderExpectError{Message: "command too long"})
	}
	if dec.open != nil {
		return 0, dec.returnErr(fmt.Errorf("imapwire: cannot decode while a literal is open"))
	}
	dec.crlf = false
	b, err := dec.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return b, dec.returnErr(err)
	}
	dec.readBytes++
	dec.remember(b)
	return b, true
}

func (dec *Decoder) acceptByte(want byte) bool {
	got, ok := dec.readByte()
	if !ok {
		return false
	} else if got != want {
		dec.mustUnreadByte()
		return false
	}
	return true
}

// EOF returns true if end-of-file is reached.
func (dec *Decoder) EOF() bool {
	_, err := dec.r.ReadByte()
	if err == io.EOF {
		return true
	} else if err != nil {
		return dec.returnErr(err)
	}
	dec.mustUnreadByte()
	return false
}

// Expect sets the decoder error if ok is false.
func (dec *Decoder) Expect(ok bool, name string) bool {
	if !ok {
		msg := fmt.Sprintf("expected %v", name)
		if dec.r.Buffered() > 0 {
			b, _ := dec.r.Peek(1)
			msg += fmt.Sprintf(", got %q", b)
		}
		return dec.returnErr(&DecoderExpectError{Message: msg})
	}
	return true
}

func (dec *Decoder) SP() bool {
	if dec.acceptByte(' ') {
		// https://github.com/emersion/go-imap/issues/571
		b, ok := dec.readByte()
		if !ok {
			return false
		}
		dec.mustUnreadByte()
		return b != '\r' && b != '\n'
	}

	// Special case: SP is optional if the next field is a parenthesized list
	b, ok := dec.readByte()
	if !ok {
		return false
	}
	dec.mustUnreadByte()
	return b == '('
}

func (dec *Decoder) ExpectSP() bool {
	return dec.Expect(dec.SP(), "SP")
}

func (dec *Decoder) CRLF() bool {
	dec.acceptByte(' ')  // https://github.com/emersion/go-imap/issues/540
	dec.acceptByte('\r') // be liberal in what we receive and accept lone LF
	if !dec.acceptByte('\n') {
		return false
	}
	dec.crlf = true
	dec.resetTail()
	return true
}

func (dec *Decoder) ExpectCRLF() bool {
	return dec.Expect(dec.CRLF(), "CRLF")
}

func (dec *Decoder) Func(ptr *string, valid func(ch byte) bool) bool {
	var sb strings.Builder
	for {
		b, ok := dec.readByte()
		if !ok {
			return false
		}

		if !valid(b) {
			dec.mustUnreadByte()
			break
		}

		sb.WriteByte(b)
	}
	if sb.Len() == 0 {
		return false
	}
	*ptr = sb.String()
	return true
}

func (dec *Decoder) Atom(ptr *string) bool {
	return dec.Func(ptr, IsAtomChar)
}

func (dec *Decoder) ExpectAtom(ptr *string) bool {
	return dec.Expect(dec.Atom(ptr), "atom")
}

func (dec *Decoder) Special(b byte) bool {
	return dec.acceptByte(b)
}

func (dec *Decoder) ExpectSpecial(b byte) bool {
	return dec.Expect(dec.Special(b), fmt.Sprintf("'%v'", string(b)))
}

func (dec *Decoder) Text(ptr *string) bool {
	var sb strings.Builder
	for {
		b, ok := dec.readByte()
		if !ok {
			return false
		} else if b == '\r' || b == '\n' {
			dec.mustUnreadByte()
			break
		}
		sb.WriteByte(b)
	}
	if sb.Len() == 0 {
		return false
	}
	*ptr = sb.String()
	return true
}

func (dec *Decoder) ExpectText(ptr *string) bool {
	return dec.Expect(dec.Text(ptr), "text")
}

func (dec *Decoder) DiscardValue() bool {
	var s string
	if dec.String(&s) {
		return true
	}

	isList, err := dec.List(func() error {
		if !dec.DiscardValue() {
			return dec.Err()
		}
		return nil
	})
	if err != nil {
		return false
	} else if isList {
		return true
	}

	if dec.Atom(&s) {
		return true
	}

	dec.Expect(false, "value")
	return false
}

func (dec *Decoder) numberStr() (s string, ok bool) {
	var sb strings.Builder
	for {
		ch, ok := dec.readByte()
		if !ok {
			return "", false
		} else if ch < '0' || ch > '9' {
			dec.mustUnreadByte()
			break
		}
		sb.WriteByte(ch)
	}
	if sb.Len() == 0 {
		return "", false
	}
	return sb.String(), true
}

func (dec *Decoder) Number(ptr *uint32) bool {
	s, ok := dec.numberStr()
	if !ok {
		return false
	}
	v64, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return false // can happen on overflow
	}
	*ptr = uint32(v64)
	return true
}

func (dec *Decoder) ExpectNumber(ptr *uint32) bool {
	return dec.Expect(dec.Number(ptr), "number")
}

func (dec *Decoder) Number64(ptr *int64) bool {
	s, ok := dec.numberStr()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false // can happen on overflow
	}
	*ptr = v
	return true
}

func (dec *Decoder) ExpectNumber64(ptr *int64) bool {
	return dec.Expect(dec.Number64(ptr), "number64")
}

func (dec *Decoder) ModSeq(ptr *uint64) bool {
	s, ok := dec.numberStr()
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return false // can happen on overflow
	}
	*ptr = v
	return true
}

func (dec *Decoder) ExpectModSeq(ptr *uint64) bool {
	return dec.Expect(dec.ModSeq(ptr), "mod-sequence-value")
}

func (dec *Decoder) Quoted(ptr *string) bool {
	if !dec.Special('"') {
		return false
	}
	var sb strings.Builder
	for {
		ch, ok := dec.readByte()
		if !ok {
			return false
		}

		if ch == '"' {
			break
		}
		if ch == '\r' || ch == '\n' {
			// mailyard: a quoted string cannot span lines (RFC 9051 §4.3);
			// upstream read on into the next command.
			dec.mustUnreadByte()
			return dec.returnErr(&DecoderExpectError{Message: "quoted string not closed before the end of the line"})
		}

		if ch == '\\' {
			ch, ok = dec.readByte()
			if !ok {
				return false
			}
		}

		sb.WriteByte(ch)
	}
	*ptr = sb.String()
	return true
}

func (dec *Decoder) ExpectAString(ptr *string) bool {
	if dec.Quoted(ptr) {
		return true
	}
	if dec.Literal(ptr) {
		return true
	}
	// We cannot do dec.Atom(ptr) here because sometimes mailbox names are unquoted,
	// and they can contain special characters like `]`.
	return dec.Expect(dec.Func(ptr, isAStringChar), "ASTRING-CHAR")
}

func (dec *Decoder) String(ptr *string) bool {
	return dec.Quoted(ptr) || dec.Literal(ptr)
}

func (dec *Decoder) ExpectString(ptr *string) bool {
	return dec.Expect(dec.String(ptr), "string")
}

func (dec *Decoder) List(f func() error) (isList bool, err error) {
	if !dec.Special('(') {
		return false, nil
	}
	if dec.Special(')') {
		return true, nil
	}

	return true, dec.Nest(func() error {
		for {
			if err := f(); err != nil {
				return err
			}

			if dec.Special(')') {
				return nil
			} else if !dec.ExpectSP() {
				return dec.Err()
			}
		}
	})
}

// Nest runs f, which decodes an element nested in the current one (a
// list's items, the operand of SEARCH's NOT). Beyond MaxDepth levels it
// records and returns a DecoderExpectError instead: the command is
// answered BAD.
func (dec *Decoder) Nest(f func() error) error {
	if dec.listDepth >= MaxDepth {
		dec.returnErr(&DecoderExpectError{Message: fmt.Sprintf("nested more than %d levels deep", MaxDepth)})
		return dec.err
	}
	dec.listDepth++
	defer func() {
		dec.listDepth--
	}()
	return f()
}

func (dec *Decoder) ExpectList(f func() error) error {
	isList, err := dec.List(f)
	if err != nil {
		return err
	} else if !dec.Expect(isList, "(") {
		return dec.Err()
	}
	return nil
}

// ExpectMailbox reads a mailbox name and decodes it (DecodeMailbox). A
// name that is not valid modified UTF-7 sets a *MailboxNameError.
func (dec *Decoder) ExpectMailbox(ptr *string) bool {
	var name string
	if !dec.ExpectAString(&name) {
		return false
	}
	name, err := DecodeMailbox(name)
	if err != nil {
		return dec.returnErr(err)
	}
	*ptr = name
	return true
}

// MailboxNameError is a mailbox name that is not valid modified UTF-7
// (RFC 9051 §5.1.3). It is a well-formed astring, so the command is not
// BAD: no mailbox has such a name, and the command fails with NO, as
// Dovecot answers ("Mailbox name is not valid mUTF-7").
//
// mailyard: was a DecoderExpectError (BAD).
type MailboxNameError struct {
	Name string
}

// Error implements error.
func (err *MailboxNameError) Error() string {
	return fmt.Sprintf("imapwire: mailbox name %q is not valid modified UTF-7", err.Name)
}

// DecodeMailbox decodes a mailbox name as the client sent it: INBOX in
// any case is INBOX, other names are modified UTF-7. An invalid name
// gives a *MailboxNameError.
func DecodeMailbox(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	decoded, err := utf7.Decode(name)
	if err != nil {
		return "", &MailboxNameError{Name: name}
	}
	return decoded, nil
}

func (dec *Decoder) ExpectNumSet(kind NumKind, ptr *imap.NumSet) bool {
	if dec.Special('$') {
		*ptr = imap.SearchRes()
		return true
	}

	var s string
	if !dec.Expect(dec.Func(&s, isNumSetChar), "sequence-set") {
		return false
	}
	numSet, err := imapnum.ParseSet(s)
	if err != nil {
		// mailyard: the client's mistake, answered BAD, not SERVERBUG.
		return dec.returnErr(&DecoderExpectError{Message: "sequence-set: " + err.Error()})
	}

	switch kind {
	case NumKindSeq:
		*ptr = seqSetFromNumSet(numSet)
	case NumKindUID:
		*ptr = uidSetFromNumSet(numSet)
	}
	return true
}

func (dec *Decoder) ExpectUIDSet(ptr *imap.UIDSet) bool {
	var numSet imap.NumSet
	ok := dec.ExpectNumSet(NumKindUID, &numSet)
	if ok {
		*ptr = numSet.(imap.UIDSet)
	}
	return ok
}

func isNumSetChar(ch byte) bool {
	return ch == '*' || IsAtomChar(ch)
}

func (dec *Decoder) Literal(ptr *string) bool {
	lit, nonSync, ok := dec.LiteralReader()
	if !ok {
		return false
	}
	if dec.CheckBufferedLiteralFunc != nil {
		// mailyard: a refused literal stays open and its error is
		// recorded, so that nothing decodes its data or the client's next
		// command as the rest of this one (upstream cancelled the literal
		// and went on reading); see Skip.
		if err := dec.CheckBufferedLiteralFunc(lit.Size(), nonSync); err != nil {
			return dec.returnErr(err)
		}
	}
	lit.Accept()
	var sb strings.Builder
	_, err := io.Copy(&sb, lit)
	if err == nil {
		*ptr = sb.String()
		dec.readBytes += lit.Size()
	}
	return dec.returnErr(err)
}

// ReadSize returns how many bytes of input were decoded, buffered
// literals included (see MaxSize).
func (dec *Decoder) ReadSize() int64 {
	return dec.readBytes
}

func (dec *Decoder) LiteralReader() (lit *LiteralReader, nonSync, ok bool) {
	if !dec.Special('{') {
		return nil, false, false
	}
	var size int64
	if !dec.ExpectNumber64(&size) {
		return nil, false, false
	}
	if dec.side == ConnSideServer {
		nonSync = dec.acceptByte('+')
	}
	if !dec.ExpectSpecial('}') || !dec.ExpectCRLF() {
		return nil, false, false
	}
	// mailyard: the CRLF ends the literal's header, not the command.
	dec.crlf = false
	lit = &LiteralReader{
		dec:     dec,
		size:    size,
		nonSync: nonSync,
		r:       &io.LimitedReader{R: dec.r, N: size},
	}
	dec.open = lit
	return lit, nonSync, true
}

func (dec *Decoder) ExpectLiteralReader() (lit *LiteralReader, nonSync bool, err error) {
	lit, nonSync, ok := dec.LiteralReader()
	if !dec.Expect(ok, "literal") {
		return nil, false, dec.Err()
	}
	return lit, nonSync, nil
}

type LiteralReader struct {
	dec      *Decoder
	size     int64
	nonSync  bool
	accepted bool
	r        *io.LimitedReader
}

func (lit *LiteralReader) Size() int64 {
	return lit.size
}

// Accept records that the client sends the literal's data: the server
// sent the continuation request of a synchronising literal (RFC 9051
// §4.3), or takes a non-synchronising one (RFC 7888). Skip relies on it:
// the data of a synchronising literal that was not accepted never comes.
//
// mailyard: added with Skip.
func (lit *LiteralReader) Accept() {
	lit.accepted = true
}

func (lit *LiteralReader) Read(b []byte) (int, error) {
	n, err := lit.r.Read(b)
	if err == io.EOF {
		lit.cancel()
	}
	return n, err
}

func (lit *LiteralReader) cancel() {
	if lit.dec == nil {
		return
	}
	if lit.dec.open == lit {
		lit.dec.open = nil
	}
	lit.dec = nil
}
