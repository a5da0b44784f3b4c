package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

const (
	cmdReadTimeout     = 30 * time.Second
	idleReadTimeout    = 35 * time.Minute // section 5.4 says 30min minimum
	literalReadTimeout = 5 * time.Minute

	respWriteTimeout    = 30 * time.Second
	literalWriteTimeout = 5 * time.Minute

	maxCommandSize = 50 * 1024 // RFC 2683 section 3.2.1.5 says 8KiB minimum

	// maxBufferedLiteral is the largest literal read into memory (all but
	// APPEND's).
	maxBufferedLiteral = 4096
	// maxSkip bounds what is read and thrown away of a command that
	// failed: the rest of its line and the data of its non-synchronising
	// literals. Beyond it the connection is closed (imapwire package
	// documentation).
	maxSkip = 1 << 20
)

var internalServerErrorResp = &imap.StatusResponse{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeServerBug,
	Text: "Internal server error",
}

// internalServerErrorBye is the greeting of a connection the server
// cannot serve: a greeting is OK, PREAUTH or BYE, never NO (RFC 9051
// §7.1, greeting in §9).
//
// mailyard: upstream greeted with internalServerErrorResp.
var internalServerErrorBye = &imap.StatusResponse{
	Type: imap.StatusResponseTypeBye,
	Code: imap.ResponseCodeServerBug,
	Text: "Internal server error",
}

// A Conn represents an IMAP connection to the server.
type Conn struct {
	server *Server
	// mailyard: br and bw hold a buffer only while a command is read or
	// a response written (see buffers.go); rw is what they wrap and src
	// what br reads from.
	br       *bufio.Reader
	brHeld   atomic.Bool // atomic only so that tests may look
	src      connSource
	bw       *bufio.Writer
	bwHeld   atomic.Bool // changed under encMutex
	rw       io.ReadWriter
	encMutex sync.Mutex
	// batchOut is set while a command that reads nothing more from the
	// client runs: its responses stay in bw until complete flushes them
	// with the tagged response, one write instead of one per line
	// (mailyard, issue 16). Unset outside such commands, so that IDLE's
	// updates and continuation requests go out at once.
	batchOut atomic.Bool

	mutex   sync.Mutex
	conn    net.Conn
	enabled imap.CapSet

	state   imap.ConnState
	session Session
	// log is the server's logger with the connection's remote address.
	// mailyard: added.
	log *slog.Logger
	// idleTag is the tag of an IDLE command waiting for DONE (idle.go).
	idleTag string
	// compressed is set once COMPRESS DEFLATE is active (compress.go).
	compressed bool
	// notifyFetch is the writer options of NOTIFY's MessageNew fetch
	// attributes, waitW the writer a SessionNotify writes to while the
	// connection waits for a command (notify.go).
	notifyFetch fetchWriterOptions
	waitW       UpdateWriter
}

func newConn(c net.Conn, server *Server) *Conn {
	conn := &Conn{
		conn:    c,
		server:  server,
		br:      new(bufio.Reader),
		bw:      new(bufio.Writer),
		enabled: make(imap.CapSet),
		log:     server.logger().With("remote", remoteAddr(c)),
	}
	rw := server.options.wrapReadWriter(c)
	conn.src = connSource{r: rw}
	conn.rw = rw
	return conn
}

// NetConn returns the underlying connection that is wrapped by the IMAP
// connection.
//
// Writing to or reading from this connection directly will corrupt the IMAP
// session.
func (c *Conn) NetConn() net.Conn {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.conn
}

// Bye terminates the IMAP connection.
func (c *Conn) Bye(text string) error {
	respErr := c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: text,
	})
	closeErr := c.conn.Close()
	if respErr != nil {
		return respErr
	}
	return closeErr
}

// Bounds of the lingering close after a BYE the server says on its own.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// byeLingering says BYE and ends the connection without losing the BYE.
// Closing a socket whose input is unread makes the kernel send a reset,
// which can discard the BYE before the client reads it; the client would
// not learn why (RFC 9051 §7.1.5). So the write side is shut first (the
// client reads the BYE, then the end of the stream), and what the client
// still sends is read and dropped, for at most lingerTime and
// lingerBytes, before the connection is closed. Only the connection's own
// goroutine may call it: it reads from the connection.
//
// mailyard: added.
func (c *Conn) byeLingering(text string) error {
	respErr := c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: text,
	})
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok && respErr == nil && cw.CloseWrite() == nil {
		_ = c.conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.conn, lingerBytes)
	}
	closeErr := c.conn.Close()
	if respErr != nil {
		return respErr
	}
	return closeErr
}

func (c *Conn) EnabledCaps() imap.CapSet {
	c.mutex.Lock()
	defer c.mutex.Unlock()

	return c.enabled.Copy()
}

// remoteAddr is the remote address of c for the log, "" if it has none.
func remoteAddr(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// clientGone reports whether err says that the client went away: end
// of input, a closed or reset connection, a timeout.
//
// mailyard: added; the imap package chose log levels from the message's
// text.
func clientGone(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne) && ne.Timeout()
}

// ioLevel is the level at which a connection that ends with err is
// logged: Debug when the client went away, which is routine, else Warn.
func ioLevel(err error) slog.Level {
	if clientGone(err) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func (c *Conn) serve() {
	defer func() {
		// mailyard: a panic ends only this connection; it is logged at
		// Error with its stack. No panic is meant to be reachable from
		// a client (see the package comment); this is defence in depth.
		if v := recover(); v != nil {
			c.log.Error("imapserver: panic serving connection", "panic", v, "stack", string(debug.Stack()))
		}

		c.conn.Close()
	}()

	c.server.mutex.Lock()
	c.server.conns[c] = struct{}{}
	c.server.mutex.Unlock()
	defer func() {
		c.server.mutex.Lock()
		delete(c.server.conns, c)
		c.server.mutex.Unlock()
	}()

	var (
		greetingData *GreetingData
		err          error
	)
	c.session, greetingData, err = c.server.options.NewSession(c)
	if err != nil {
		var (
			resp    *imap.StatusResponse
			imapErr *imap.Error
		)
		if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeBye {
			resp = (*imap.StatusResponse)(imapErr)
		} else {
			c.log.Error("imapserver: failed to create session", "err", err)
			resp = internalServerErrorBye
		}
		if err := c.writeStatusResp("", resp); err != nil {
			c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to write greeting", "err", err)
		}
		return
	}

	defer func() {
		if c.session != nil {
			if err := c.session.Close(); err != nil {
				c.log.Warn("imapserver: failed to close session", "err", err)
			}
		}
	}()

	// mailyard: a session that lacks a capability the server advertises
	// is a fault of the server, logged, and the client is told BYE
	// (upstream panicked).
	if missing := missingSessionCap(c.session, c.server.options.caps()); missing != "" {
		c.log.Error("imapserver: server advertises a capability the session does not implement", "cap", missing)
		if err := c.writeStatusResp("", internalServerErrorBye); err != nil {
			c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to write greeting", "err", err)
		}
		return
	}

	c.state = imap.ConnStateNotAuthenticated
	statusType := imap.StatusResponseTypeOK
	if greetingData != nil && greetingData.PreAuth {
		c.state = imap.ConnStateAuthenticated
		statusType = imap.StatusResponseTypePreAuth
	}
	if err := c.writeCapabilityStatus("", statusType, "IMAP server ready"); err != nil {
		c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to write greeting", "err", err)
		return
	}

	for {
		var readTimeout time.Duration
		switch c.state {
		case imap.ConnStateAuthenticated, imap.ConnStateSelected:
			readTimeout = idleReadTimeout
		default:
			readTimeout = cmdReadTimeout
		}
		c.setReadTimeout(readTimeout)
		if c.state == imap.ConnStateLogout {
			break
		}
		// mailyard: nothing may wait in the write buffer while the client
		// is waited for.
		if err := c.flushBatch(); err != nil {
			break
		}
		// mailyard: wait without a read buffer, here rather than deeper
		// down so that an idle connection's stack stays small (idle.go).
		// A session with NOTIFY writes its notifications meanwhile
		// (notify.go).
		ns := c.waitStart()
		err := c.waitInput()
		if ns != nil {
			if stopErr := ns.WaitStop(); stopErr != nil && err == nil {
				if !errors.Is(stopErr, net.ErrClosed) {
					c.log.Log(context.Background(), ioLevel(stopErr), "imapserver: failed to write notifications", "err", stopErr)
				}
				break
			}
		}
		if err != nil {
			if c.idleTag != "" {
				c.idleTag = ""
				_ = c.session.IdleStop()
			}
			if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to read command", "err", err)
			}
			break
		}
		if c.idleTag != "" {
			if err := c.finishIdle(); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to end IDLE", "err", err)
				}
				break
			}
			continue
		}

		dec := imapwire.NewDecoder(c.br, imapwire.ConnSideServer)
		dec.MaxSize = maxCommandSize
		dec.CheckBufferedLiteralFunc = func(size int64, nonSync bool) error {
			return c.checkBufferedLiteral(size, nonSync, dec.ReadSize())
		}

		if c.state == imap.ConnStateLogout || dec.EOF() {
			break
		}

		c.setReadTimeout(cmdReadTimeout)
		if err := c.readCommand(dec); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Log(context.Background(), ioLevel(err), "imapserver: failed to read command", "err", err)
			}
			break
		}
	}
}

// missingSessionCap returns the first capability in caps that needs a
// session interface session does not implement, or "".
//
// mailyard: added (upstream panicked in serve).
func missingSessionCap(session Session, caps imap.CapSet) imap.Cap {
	needs := []struct {
		cap imap.Cap
		ok  bool
	}{
		{imap.CapIMAP4rev2, implements[SessionIMAP4rev2](session)},
		{imap.CapNamespace, implements[SessionNamespace](session)},
		{imap.CapMove, implements[SessionMove](session)},
		{imap.CapUnauthenticate, implements[SessionUnauthenticate](session)},
	}
	for _, n := range needs {
		if !n.ok && caps.Has(n.cap) {
			return n.cap
		}
	}
	return ""
}

func implements[T any](session Session) bool {
	_, ok := session.(T)
	return ok
}

func (c *Conn) readCommand(dec *imapwire.Decoder) error {
	var tag, name string
	if !dec.ExpectAtom(&tag) || !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return c.unreadableCommand(tag, dec.Err())
	}
	name = strings.ToUpper(name)

	numKind := NumKindSeq
	if name == "UID" {
		numKind = NumKindUID
		var subName string
		if !dec.ExpectSP() || !dec.ExpectAtom(&subName) {
			if c.state == imap.ConnStateNotAuthenticated {
				return c.unreadableCommand(tag, dec.Err())
			}
			// mailyard: after login the tag is known, so this is a
			// failed command like any other (upstream closed the
			// connection).
			return c.finishCommand(dec, tag, name, dec.Err(), true)
		}
		name = "UID " + strings.ToUpper(subName)
	}

	if done := c.server.options.CommandDone; done != nil {
		start := time.Now()
		defer func() { done(name, time.Since(start)) }()
	}

	// TODO: handle multiple commands concurrently
	c.batchOut.Store(batchedCommands[name])
	sendOK := true
	var err error
	switch name {
	case "NOOP", "CHECK":
		err = c.handleNoop(dec)
	case "LOGOUT":
		err = c.handleLogout(dec)
	case "CAPABILITY":
		err = c.handleCapability(dec)
	case "STARTTLS":
		err = c.handleStartTLS(tag, dec)
		sendOK = false
	case "AUTHENTICATE":
		err = c.handleAuthenticate(tag, dec)
		sendOK = false
	case "UNAUTHENTICATE":
		err = c.handleUnauthenticate(dec)
	case "LOGIN":
		err = c.handleLogin(tag, dec)
		sendOK = false
	case "ENABLE":
		err = c.handleEnable(dec)
	case "CREATE":
		err = c.handleCreate(dec)
	case "DELETE":
		err = c.handleDelete(dec)
	case "RENAME":
		err = c.handleRename(dec)
	case "SUBSCRIBE":
		err = c.handleSubscribe(dec)
	case "UNSUBSCRIBE":
		err = c.handleUnsubscribe(dec)
	case "STATUS":
		err = c.handleStatus(dec)
	case "LIST":
		err = c.handleList(dec)
	case "LSUB":
		err = c.handleLSub(dec)
	case "NAMESPACE":
		err = c.handleNamespace(dec)
	case "IDLE":
		// mailyard: completed by finishIdle when DONE arrives.
		err = c.handleIdle(tag, dec)
		sendOK = false
	case "SELECT", "EXAMINE":
		err = c.handleSelect(tag, dec, name == "EXAMINE")
		sendOK = false
	case "CLOSE", "UNSELECT":
		err = c.handleUnselect(dec, name == "CLOSE")
	case "APPEND":
		err = c.handleAppend(tag, dec)
		sendOK = false
	case "FETCH", "UID FETCH":
		err = c.handleFetch(dec, numKind)
	case "EXPUNGE":
		err = c.handleExpunge(dec)
	case "UID EXPUNGE":
		err = c.handleUIDExpunge(dec)
	case "STORE", "UID STORE":
		err = c.handleStore(dec, numKind)
	case "COPY", "UID COPY":
		err = c.handleCopy(tag, dec, numKind)
		sendOK = false
	case "MOVE", "UID MOVE":
		err = c.handleMove(dec, numKind)
	case "SEARCH", "UID SEARCH":
		err = c.handleSearch(tag, dec, numKind)
	case "COMPRESS": // mailyard: RFC 4978, see compress.go
		err = c.handleCompress(tag, dec)
		sendOK = false
	case "CANCELUPDATE": // mailyard: RFC 5267 §4.3.5, see context.go
		err = c.handleCancelUpdate(dec)
	case "SORT", "UID SORT": // mailyard: RFC 5256, see sort.go
		err = c.handleSort(tag, dec, numKind)
	case "THREAD", "UID THREAD":
		err = c.handleThread(dec, numKind)
	// mailyard: ID (RFC 2971) and QUOTA (RFC 9208), see id.go and quota.go.
	case "ID":
		err = c.handleID(dec)
	case "GETQUOTA":
		err = c.handleGetQuota(dec)
	case "GETQUOTAROOT":
		err = c.handleGetQuotaRoot(dec)
	case "SETQUOTA":
		err = c.handleSetQuota(dec)
	// mailyard: METADATA (RFC 5464), see metadata.go.
	case "GETMETADATA":
		err = c.handleGetMetadata(dec)
	case "SETMETADATA":
		err = c.handleSetMetadata(dec)
	case "NOTIFY": // mailyard: RFC 5465, see notify.go
		err = c.handleNotify(dec)
	default:
		if c.state == imap.ConnStateNotAuthenticated {
			// Don't allow a single unknown command before authentication to
			// mitigate cross-protocol attacks:
			// https://www-archive.mozilla.org/projects/netlib/portbanning
			c.state = imap.ConnStateLogout
			defer c.byeLingering("Unknown command")
		}
		err = &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Unknown command",
		}
	}

	return c.finishCommand(dec, tag, name, err, sendOK)
}

// finishCommand completes a command that ended with err (complete).
//
// mailyard: a command that failed before its end is answered first,
// then skipped up to where the client's next command begins, or the
// connection is closed (imapwire.Decoder.Skip). Upstream discarded one
// line, so that a refused literal's data ran as commands.
func (c *Conn) finishCommand(dec *imapwire.Decoder, tag, name string, err error, sendOK bool) error {
	if dec.AtCommandEnd() || c.state == imap.ConnStateLogout {
		return c.complete(tag, name, err, sendOK)
	}
	if err := c.complete(tag, name, err, sendOK); err != nil {
		return err
	}
	return c.skipCommand(dec)
}

// unreadableCommand ends the connection when a command's tag or name
// cannot be read (err): it answers BAD, untagged when there is no tag
// (RFC 9051 §7.1.3), and says BYE, so that the client learns why the
// connection closes. The rest is not skipped: without a tag and name
// there is no telling a client's command from another protocol's data.
//
// mailyard: upstream closed the connection without a word.
func (c *Conn) unreadableCommand(tag string, err error) error {
	var decErr *imapwire.DecoderExpectError
	if errors.As(err, &decErr) {
		c.state = imap.ConnStateLogout
		resp := &imap.StatusResponse{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "Syntax error: " + decErr.Message,
		}
		if werr := c.writeStatusResp(tag, resp); werr == nil {
			_ = c.byeLingering("Cannot read the command") // the connection is closed either way
		}
	}
	return fmt.Errorf("in command: %w", err)
}

// skipCommand discards the rest of a failed command; when that is not
// possible it says BYE and closes the connection.
//
// mailyard: added.
func (c *Conn) skipCommand(dec *imapwire.Decoder) error {
	err := dec.Skip(maxSkip)
	var skipErr *imapwire.SkipError
	if !errors.As(err, &skipErr) {
		return err
	}
	c.log.Info("imapserver: closing connection: cannot skip the rest of a failed command", "err", skipErr)
	c.state = imap.ConnStateLogout
	return c.byeLingering("Cannot skip the rest of the command")
}

// complete writes the tagged response of a command that ended with err;
// on success, after the updates (poll), unless the handler wrote the
// tagged response itself (!sendOK). mailyard: split out of readCommand so
// that IDLE can complete from the serve loop.
func (c *Conn) complete(tag, name string, err error, sendOK bool) error {
	defer c.flushBatch()
	var (
		resp    *imap.StatusResponse
		imapErr *imap.Error
		decErr  *imapwire.DecoderExpectError
		nameErr *imapwire.MailboxNameError
	)
	var later *okAfterPoll
	if errors.As(err, &later) {
		// mailyard: an OK whose code depends on the updates.
		if err := c.poll(name); err != nil {
			return err
		}
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeOK,
			Code: later.code(),
			Text: fmt.Sprintf("%v completed", name),
		}
	} else if errors.As(err, &imapErr) {
		if imapErr.Type == imap.StatusResponseTypeOK {
			// mailyard: a session's OK with a response code (STORE's
			// [MODIFIED], RFC 7162 §3.1.3) follows the updates, as a
			// plain OK does.
			if err := c.poll(name); err != nil {
				return err
			}
		}
		resp = (*imap.StatusResponse)(imapErr)
	} else if errors.As(err, &nameErr) {
		// mailyard: no mailbox has a name that is not valid modified
		// UTF-7; CREATE and RENAME answer [CANNOT] for the new name
		// (invalidNewName).
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeNonExistent,
			Text: "Mailbox name is not valid modified UTF-7",
		}
	} else if errors.As(err, &decErr) {
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "Syntax error: " + decErr.Message,
		}
	} else if err != nil {
		if clientGone(err) {
			// mailyard: the client went away in the middle of the
			// command; the answer below will most likely not reach it.
			c.log.Debug("imapserver: client went away during command", "cmd", name, "err", err)
		} else {
			c.log.Error("imapserver: command failed", "cmd", name, "err", err)
		}
		resp = internalServerErrorResp
	} else {
		if !sendOK {
			return nil
		}
		if err := c.poll(name); err != nil {
			return err
		}
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeOK,
			Text: fmt.Sprintf("%v completed", name),
		}
	}
	return c.writeStatusResp(tag, resp)
}

// batchedCommands are the commands whose responses are written in one
// flush (see Conn.batchOut): those that send no continuation request and
// do not hand the connection to a session callback that writes later
// (IDLE). A command not listed flushes every line.
//
// mailyard: added.
var batchedCommands = map[string]bool{
	"NOOP": true, "CHECK": true, "SELECT": true, "EXAMINE": true, "LIST": true, "LSUB": true,
	"STATUS": true, "FETCH": true, "UID FETCH": true, "STORE": true, "UID STORE": true,
	"SEARCH": true, "UID SEARCH": true, "COPY": true, "UID COPY": true, "MOVE": true,
	"UID MOVE": true, "EXPUNGE": true, "UID EXPUNGE": true, "CLOSE": true, "UNSELECT": true,
}

// flushBatch ends batchOut and writes what it left in the buffer.
//
// mailyard: added.
func (c *Conn) flushBatch() error {
	if !c.batchOut.Swap(false) {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	return enc.Flush()
}

// okAfterPoll, returned by a handler, ends its command with a tagged OK
// whose response code is computed after the command's updates are
// written (EXPUNGE's [HIGHESTMODSEQ], RFC 7162 §3.2.7).
//
// mailyard: added for QRESYNC.
type okAfterPoll struct{ code func() imap.ResponseCode }

func (*okAfterPoll) Error() string { return "command completed" }

func (c *Conn) handleNoop(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	return nil
}

func (c *Conn) handleLogout(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	c.state = imap.ConnStateLogout

	return c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: "Logging out",
	})
}

func (c *Conn) handleDelete(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Delete(name)
}

func (c *Conn) handleRename(dec *imapwire.Decoder) error {
	var oldName, newName string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&oldName) || !dec.ExpectSP() {
		return dec.Err()
	}
	if !dec.ExpectMailbox(&newName) || !dec.ExpectCRLF() {
		return invalidNewName(dec.Err())
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	var options imap.RenameOptions
	return c.session.Rename(oldName, newName, &options)
}

// invalidNewName turns a *imapwire.MailboxNameError for the name of a
// mailbox to be created into NO [CANNOT]: the name can never be created
// (RFC 5530 §3), while TRYCREATE or NONEXISTENT would mislead.
//
// mailyard: added with imapwire.MailboxNameError.
func invalidNewName(err error) error {
	if isMailboxNameError(err) {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeCannot,
			Text: "Mailbox name is not valid modified UTF-7",
		}
	}
	return err
}

func (c *Conn) handleSubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Subscribe(name)
}

func (c *Conn) handleUnsubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Unsubscribe(name)
}

// checkBufferedLiteral accepts a literal that is read into memory, or
// refuses it before the continuation request: one literal is at most 4 KiB
// and a command with its literals at most maxCommandSize (read is what
// the command took so far).
func (c *Conn) checkBufferedLiteral(size int64, nonSync bool, read int64) error {
	if err := c.checkNonSyncLiteral(size, nonSync); err != nil {
		return err
	}
	if size > maxBufferedLiteral {
		return c.refuseLiteral(size, nonSync, &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Literals are limited to %d bytes for this command", maxBufferedLiteral),
		})
	}
	// mailyard: upstream did not count literals towards the command's
	// size, so that one command could hold thousands of them in memory.
	if read+size > maxCommandSize {
		return c.refuseLiteral(size, nonSync, &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Commands are limited to %d bytes with their literals", maxCommandSize),
		})
	}
	return c.acceptLiteral(size, nonSync)
}

// checkNonSyncLiteral refuses a non-synchronising literal of more than
// 4096 bytes unless LITERAL+ was announced, which happens after login
// only (RFC 7888: LITERAL- allows 4096 bytes, and such a literal is
// rejected with BAD).
//
// mailyard: upstream looked at the server's capabilities, not at those
// the connection announced.
func (c *Conn) checkNonSyncLiteral(size int64, nonSync bool) error {
	if !nonSync || size <= maxBufferedLiteral {
		return nil
	}
	authenticated := c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected
	if authenticated && c.server.options.caps().Has(imap.CapLiteralPlus) {
		return nil
	}
	return c.refuseLiteral(size, nonSync, &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeTooBig,
		Text: fmt.Sprintf("Non-synchronizing literals are limited to %d bytes", maxBufferedLiteral),
	})
}

// acceptLiteral lets the client send a literal's data: it writes the
// continuation request of a synchronising literal.
func (c *Conn) acceptLiteral(size int64, nonSync bool) error {
	if nonSync {
		return nil
	}
	return c.writeContReq("Ready for literal data")
}

// refuseLiteral logs a literal that is refused and returns resp, the
// command's answer.
//
// mailyard: added; the literal's data, if the client sends it, is
// skipped (Conn.skipCommand).
func (c *Conn) refuseLiteral(size int64, nonSync bool, resp *imap.Error) error {
	kind := "synchronizing"
	if nonSync {
		kind = "non-synchronizing"
	}
	c.log.Info("imapserver: refused literal", "kind", kind, "size", size, "reason", resp.Text)
	return resp
}

func (c *Conn) canAuth() bool {
	if c.state != imap.ConnStateNotAuthenticated {
		return false
	}
	_, isTLS := c.conn.(*tls.Conn)
	return isTLS || c.server.options.InsecureAuth
}

func (c *Conn) writeStatusResp(tag string, statusResp *imap.StatusResponse) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeStatusResp(enc.Encoder, tag, statusResp)
}

func (c *Conn) writeContReq(text string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeContReq(enc.Encoder, text)
}

func (c *Conn) writeCapabilityStatus(tag string, typ imap.StatusResponseType, text string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeCapabilityStatus(enc.Encoder, tag, typ, c.availableCaps(), text)
}

func (c *Conn) checkState(state imap.ConnState) error {
	if state == imap.ConnStateAuthenticated && c.state == imap.ConnStateSelected {
		return nil
	}
	if c.state != state {
		return newClientBugError(fmt.Sprintf("This command is only valid in the %s state", state))
	}
	return nil
}

func (c *Conn) setReadTimeout(dur time.Duration) {
	if dur > 0 {
		c.conn.SetReadDeadline(time.Now().Add(dur))
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

func (c *Conn) setWriteTimeout(dur time.Duration) {
	if dur > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(dur))
	} else {
		c.conn.SetWriteDeadline(time.Time{})
	}
}

func (c *Conn) poll(cmd string) error {
	switch c.state {
	case imap.ConnStateAuthenticated, imap.ConnStateSelected:
		// nothing to do
	default:
		return nil
	}

	allowExpunge := true
	switch cmd {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD":
		allowExpunge = false
	}

	w := &UpdateWriter{conn: c, allowExpunge: allowExpunge}
	return c.session.Poll(w, allowExpunge)
}

type responseEncoder struct {
	*imapwire.Encoder
	conn *Conn
}

func newResponseEncoder(conn *Conn) *responseEncoder {
	conn.mutex.Lock()
	quotedUTF8 := conn.enabled.Has(imap.CapIMAP4rev2) || conn.enabled.Has(imap.CapUTF8Accept)
	conn.mutex.Unlock()

	wireEnc := imapwire.NewEncoder(conn.bw, imapwire.ConnSideServer)
	wireEnc.QuotedUTF8 = quotedUTF8
	wireEnc.NoFlush = conn.batchOut.Load()

	conn.encMutex.Lock() // released by responseEncoder.end
	conn.holdWriter()
	conn.setWriteTimeout(respWriteTimeout)
	return &responseEncoder{
		Encoder: wireEnc,
		conn:    conn,
	}
}

func (enc *responseEncoder) end() {
	if enc.Encoder == nil {
		// A programming error of this package: the code that makes a
		// responseEncoder ends it once on every path, whatever the
		// client sends (FetchResponseWriter.Close refuses a second call).
		panic("imapserver: responseEncoder.end called twice")
	}
	enc.Encoder = nil
	enc.conn.setWriteTimeout(0)
	enc.conn.releaseWriter()
	enc.conn.encMutex.Unlock()
}

func (enc *responseEncoder) Literal(size int64) io.WriteCloser {
	enc.conn.setWriteTimeout(literalWriteTimeout)
	return literalWriter{
		WriteCloser: enc.Encoder.Literal(size, nil),
		conn:        enc.conn,
	}
}

type literalWriter struct {
	io.WriteCloser
	conn *Conn
}

func (lw literalWriter) Close() error {
	lw.conn.setWriteTimeout(respWriteTimeout)
	return lw.WriteCloser.Close()
}

func writeStatusResp(enc *imapwire.Encoder, tag string, statusResp *imap.StatusResponse) error {
	if tag == "" {
		tag = "*"
	}
	enc.Atom(tag).SP().Atom(string(statusResp.Type)).SP()
	if statusResp.Code != "" {
		enc.Atom(fmt.Sprintf("[%v]", statusResp.Code)).SP()
	}
	enc.Text(statusResp.Text)
	return enc.CRLF()
}

func writeCapabilityOK(enc *imapwire.Encoder, tag string, caps []imap.Cap, text string) error {
	return writeCapabilityStatus(enc, tag, imap.StatusResponseTypeOK, caps, text)
}

func writeCapabilityStatus(enc *imapwire.Encoder, tag string, typ imap.StatusResponseType, caps []imap.Cap, text string) error {
	if tag == "" {
		tag = "*"
	}

	enc.Atom(tag).SP().Atom(string(typ)).SP().Special('[').Atom("CAPABILITY")
	for _, c := range caps {
		enc.SP().Atom(string(c))
	}
	enc.Special(']').SP().Text(text)
	return enc.CRLF()
}

func writeContReq(enc *imapwire.Encoder, text string) error {
	// mailyard: the client waits for it, also in the middle of a command
	// whose other responses are batched (Conn.batchOut).
	if err := enc.Atom("+").SP().Text(text).CRLF(); err != nil {
		return err
	}
	return enc.Flush()
}

func newClientBugError(text string) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeClientBug,
		Text: text,
	}
}
