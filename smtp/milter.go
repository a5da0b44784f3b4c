package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-milter"
	gosmtp "github.com/emersion/go-smtp"
)

// Milter is one mail filter (Sendmail's milter protocol, version 2 to 6)
// that the server asks about every message, for antivirus or DLP. See
// Options.Milters for how a chain of them is run.
type Milter struct {
	// Name identifies the milter in logs and metrics. Default: Address.
	Name string
	// Address is "tcp:host:port" (an IPv6 host in brackets) or
	// "unix:/path/to/socket". See [ParseMilterAddress].
	Address string
	// ConnectTimeout bounds connecting to the milter (default 10s),
	// CommandTimeout the sending of each command (default 10s) and
	// ReadTimeout the wait for each of its replies (default 30s; at end
	// of message a milter that scans a large body needs it, and one that
	// sends SMFIR_PROGRESS extends it).
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	ReadTimeout    time.Duration
	// Actions are the modifications this milter may make. The zero value
	// allows every supported one (MilterAddHeader | MilterChangeHeader |
	// MilterQuarantine). A milter that asks for more at negotiation only
	// gets these; one that then sends another modification is treated as
	// failed (OnFailure).
	Actions MilterActions
	// OnFailure is what happens to the message when the milter cannot be
	// reached, times out, or breaks the protocol. Default
	// MilterFailTempfail.
	OnFailure MilterFailAction
}

// MilterActions is a set of message modifications a milter may make
// (SMFIF_* flags negotiated in SMFIC_OPTNEG).
type MilterActions uint32

// Modifications a milter may be allowed. Body replacement (SMFIF_CHGBODY),
// envelope changes (SMFIF_CHGFROM, SMFIF_ADDRCPT, SMFIF_DELRCPT) are not
// offered: go-milter's client buffers a replaced body whole in memory, and
// recipients are decided by routing at RCPT.
const (
	// MilterAddHeader allows SMFIR_ADDHEADER and SMFIR_INSHEADER
	// (SMFIF_ADDHDRS).
	MilterAddHeader MilterActions = 1 << iota
	// MilterChangeHeader allows SMFIR_CHGHEADER, which also deletes
	// (SMFIF_CHGHDRS).
	MilterChangeHeader
	// MilterQuarantine allows SMFIR_QUARANTINE (SMFIF_QUARANTINE).
	MilterQuarantine

	milterAllActions = MilterAddHeader | MilterChangeHeader | MilterQuarantine
)

// MilterFailAction is what the server does with a message when a milter
// cannot be asked.
type MilterFailAction int

// Failure actions.
const (
	// MilterFailTempfail refuses the command with 451 4.7.1; the client
	// retries later. The default: mail is never let through unscanned.
	MilterFailTempfail MilterFailAction = iota
	// MilterFailAccept goes on as if this milter were not configured
	// (Postfix's milter_default_action = accept); later milters are still
	// asked.
	MilterFailAccept
	// MilterFailReject refuses with 550 5.7.1.
	MilterFailReject
)

// String returns the action's configuration name.
func (a MilterFailAction) String() string {
	switch a {
	case MilterFailTempfail:
		return "tempfail"
	case MilterFailAccept:
		return "accept"
	case MilterFailReject:
		return "reject"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ParseMilterFailAction parses "tempfail", "accept" or "reject".
func ParseMilterFailAction(s string) (MilterFailAction, error) {
	switch s {
	case "tempfail":
		return MilterFailTempfail, nil
	case "accept":
		return MilterFailAccept, nil
	case "reject":
		return MilterFailReject, nil
	}
	return 0, fmt.Errorf("unknown milter failure action %q (want tempfail, accept or reject)", s)
}

// ParseMilterAddress splits a milter address into a network and address
// for net.Dial: "tcp:host:port" (also "inet:port@host", Sendmail's form)
// or "unix:/path" (also "local:/path").
func ParseMilterAddress(s string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("milter address %q: want tcp:host:port or unix:/path", s)
	}
	switch scheme {
	case "tcp", "inet", "inet6":
		if port, host, ok := strings.Cut(rest, "@"); ok {
			rest = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" {
			return "", "", fmt.Errorf("milter address %q: want tcp:host:port", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("milter address %q: bad port %q", s, port)
		}
		return "tcp", rest, nil
	case "unix", "local":
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("milter address %q: the socket path must be absolute", s)
		}
		return "unix", rest, nil
	}
	return "", "", fmt.Errorf("milter address %q: unknown scheme %q (want tcp or unix)", s, scheme)
}

// Milter defaults.
const (
	DefaultMilterConnectTimeout = 10 * time.Second
	DefaultMilterCommandTimeout = 10 * time.Second
	DefaultMilterReadTimeout    = 30 * time.Second
)

// milterSpec is a validated Milter.
type milterSpec struct {
	Milter
	network, addr string
}

func (m Milter) spec() (milterSpec, error) {
	network, addr, err := ParseMilterAddress(m.Address)
	if err != nil {
		return milterSpec{}, err
	}
	if m.ConnectTimeout < 0 || m.CommandTimeout < 0 || m.ReadTimeout < 0 {
		return milterSpec{}, fmt.Errorf("milter %s: timeouts must not be negative", m.Address)
	}
	if m.Actions&^milterAllActions != 0 {
		return milterSpec{}, fmt.Errorf("milter %s: unsupported actions %#x", m.Address, uint32(m.Actions&^milterAllActions))
	}
	switch m.OnFailure {
	case MilterFailTempfail, MilterFailAccept, MilterFailReject:
	default:
		return milterSpec{}, fmt.Errorf("milter %s: unknown failure action %d", m.Address, int(m.OnFailure))
	}
	if m.Name == "" {
		m.Name = m.Address
	}
	defaultTo(&m.ConnectTimeout, DefaultMilterConnectTimeout)
	defaultTo(&m.CommandTimeout, DefaultMilterCommandTimeout)
	defaultTo(&m.ReadTimeout, DefaultMilterReadTimeout)
	defaultTo(&m.Actions, milterAllActions)
	return milterSpec{Milter: m, network: network, addr: addr}, nil
}

// actionMask is what the MTA offers in SMFIC_OPTNEG.
func (m milterSpec) actionMask() milter.OptAction {
	var a milter.OptAction
	if m.Actions&MilterAddHeader != 0 {
		a |= milter.OptAddHeader
	}
	if m.Actions&MilterChangeHeader != 0 {
		a |= milter.OptChangeHeader
	}
	if m.Actions&MilterQuarantine != 0 {
		a |= milter.OptQuarantine
	}
	return a
}

// milterSteps are the protocol steps a milter may ask us to skip
// (SMFIP_NOCONNECT ... SMFIP_NOEOH). Kept within the version 2 mask so
// that go-milter can downgrade for milters that speak version 2 only.
const milterSteps = milter.OptNoConnect | milter.OptNoHelo | milter.OptNoMailFrom | milter.OptNoRcptTo |
	milter.OptNoBody | milter.OptNoHeaders | milter.OptNoEOH

// verdictKind is a milter chain's decision at one stage.
type verdictKind int

const (
	verdictContinue verdictKind = iota
	verdictAccept               // this milter is not asked again
	verdictReject
	verdictTempfail
	verdictDiscard
	verdictQuarantine
)

func (k verdictKind) String() string {
	return [...]string{"continue", "accept", "reject", "tempfail", "discard", "quarantine"}[k]
}

// milterVerdict is what the chain decided and why.
type milterVerdict struct {
	kind   verdictKind
	milter string // the milter that decided (for logs)
	reply  *gosmtp.SMTPError
	reason string // quarantine reason
	edits  []milter.ModifyAction
}

// refusal reports whether the verdict refuses (the reply is set).
func (v milterVerdict) refusal() bool {
	return v.kind == verdictReject || v.kind == verdictTempfail
}

// Replies for milter verdicts without their own SMFIR_REPLYCODE.
var (
	errMilterReject   = reply(550, "5.7.1", "message content rejected")
	errMilterTempfail = reply(451, "4.7.1", "message content could not be checked, try again later")
)

// milterConn is one milter's session for one mail transaction.
type milterConn struct {
	spec milterSpec
	cs   *milter.ClientSession
	conn net.Conn
	stop func() bool // the context watch that closes conn
	done bool        // accepted, failed-open or closed: not asked again
	// failed is the failure action of a milter that failed with
	// OnFailure tempfail or reject: every later command of the
	// transaction gets it, so that a milter that failed at one RCPT is
	// not skipped for the next one and for the message.
	failed *milterVerdict
}

// milterChain runs the configured milters, in order, for one mail
// transaction (MAIL to the end of DATA or RSET).
//
// Which SMTP reply each milter answer becomes, by stage (Sendmail's
// libmilter documentation of xxfi_* return values, milter-protocol.txt in
// go-milter):
//
//   - connect, HELO and MAIL: the chain is started at MAIL (one milter
//     session per transaction), so a reject or tempfail at any of them
//     refuses MAIL (550 5.7.1 / 451 4.7.1, or the milter's own reply), as
//     Sendmail refuses every later command of a rejected connection.
//   - RCPT: reject and tempfail refuse that recipient only (xxfi_envrcpt
//     "reject this recipient"); the others stay accepted.
//   - headers, end of headers, body chunks and end of message: the reply to
//     DATA (or the last BDAT) for the whole message.
//   - SMFIR_ACCEPT at any stage: that milter is not asked again about the
//     transaction; the later milters still are, and may still refuse the
//     message (Sendmail: "despite your acceptance, this envelope may still
//     be rejected by a later Milter"; Postfix's milter8 goes on to the next
//     milter). An allowlisting milter thus cannot exempt a message from
//     the antivirus milter after it.
//   - SMFIR_DISCARD at MAIL, RCPT or any message stage: the message is
//     answered 250 but not delivered (logged).
//   - SMFIR_QUARANTINE (only at end of message, smfi_quarantine): the
//     message is accepted and held in the [Quarantine]; a later reject or
//     tempfail from another milter still wins.
//   - A milter that fails with OnFailure tempfail or reject refuses the
//     command it failed at and every later one of the transaction.
type milterChain struct {
	srv *Server
	log *slog.Logger

	mu      sync.Mutex
	conns   []*milterConn
	ended   bool // discarded or closed: nobody is asked again
	discard string
}

// startMilters opens a session with every milter and sends connect, HELO
// and MAIL. A refusal closes the chain and returns the reply.
func (s *session) startMilters(from string, tx *transaction, user string) (*milterChain, error) {
	ms := s.srv.milters
	if len(ms) == 0 {
		return nil, nil
	}
	log, _, _ := s.state()
	c := &milterChain{srv: s.srv, log: log}
	ip := s.tc.ip
	family, addr := milter.FamilyInet, ip.String()
	if ip.Is6() && !ip.Is4In6() {
		family = milter.FamilyInet6
	}
	if !ip.IsValid() {
		family, addr = milter.FamilyUnknown, ""
	}
	var port uint16
	if ta, ok := s.tc.Conn.RemoteAddr().(*net.TCPAddr); ok {
		port = uint16(ta.Port)
	}
	// No reverse lookup is made: Sendmail's form for an unresolved client.
	host := "[" + addr + "]"
	helo := s.conn.Hostname()
	for _, spec := range ms {
		mc := &milterConn{spec: spec}
		c.conns = append(c.conns, mc)
		v := c.ask(s.ctx, mc, "connect", func() (*milter.Action, error) {
			if err := mc.open(s.ctx); err != nil {
				return nil, err
			}
			if err := mc.cs.Macros(milter.CodeConn, "j", s.srv.opts.Hostname, "{daemon_name}", s.srv.opts.Mode.String(),
				"{client_addr}", addr, "{client_name}", host); err != nil {
				return nil, err
			}
			act, err := mc.cs.Conn(host, family, port, addr)
			if err != nil || act.Code != milter.ActContinue {
				return act, err
			}
			if act, err = mc.cs.Helo(helo); err != nil || act.Code != milter.ActContinue {
				return act, err
			}
			kv := []string{"{mail_addr}", from}
			if user != "" {
				kv = append(kv, "{auth_type}", "PLAIN", "{auth_authen}", user)
			}
			if s.tls {
				kv = append(kv, "{tls_version}", "TLS")
			}
			if err := mc.cs.Macros(milter.CodeMail, kv...); err != nil {
				return nil, err
			}
			var args []string
			if tx.utf8 {
				args = append(args, "SMTPUTF8")
			}
			if tx.size > 0 {
				args = append(args, "SIZE="+strconv.FormatInt(tx.size, 10))
			}
			return mc.cs.Mail(from, args)
		})
		if done := c.settle(v, "MAIL"); done != nil {
			return nil, done
		}
		if c.ended {
			break
		}
	}
	return c, nil
}

// settle applies a verdict from before DATA. It returns the reply that
// refuses the command (and closes the chain), or nil.
func (c *milterChain) settle(v milterVerdict, stage string) error {
	switch v.kind {
	case verdictReject, verdictTempfail:
		c.log.Info("milter refused", "milter", v.milter, "stage", stage, "verdict", v.kind.String(), "reply", v.reply.Message)
		if stage == "MAIL" {
			c.close()
		}
		return v.reply
	case verdictDiscard:
		c.mu.Lock()
		if c.discard == "" {
			c.discard = v.milter
		}
		c.mu.Unlock()
		c.end()
	}
	return nil
}

// rcpt asks the milters about one recipient (after routing accepted it).
func (c *milterChain) rcpt(ctx context.Context, to string, utf8 bool) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return nil
	}
	for _, mc := range c.conns {
		if mc.failed != nil {
			return mc.failed.reply
		}
		if mc.done {
			continue
		}
		v := c.ask(ctx, mc, "rcpt", func() (*milter.Action, error) {
			if err := mc.cs.Macros(milter.CodeRcpt, "{rcpt_addr}", to); err != nil {
				return nil, err
			}
			var args []string
			if utf8 {
				args = append(args, "SMTPUTF8")
			}
			return mc.cs.Rcpt(to, args)
		})
		c.mu.Unlock()
		err := c.settle(v, "RCPT")
		c.mu.Lock()
		if err != nil {
			return err
		}
		if c.ended {
			return nil
		}
	}
	return nil
}

// message sends the header fields and then the body (read from body, in
// chunks of at most milter.MaxBodyChunk) to every milter still asking, and
// collects end-of-message answers. body is called once per milter.
func (c *milterChain) message(ctx context.Context, id string, fields []headerField, body func() (io.Reader, error)) milterVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	final := milterVerdict{kind: verdictContinue}
	if c.discard != "" {
		return milterVerdict{kind: verdictDiscard, milter: c.discard}
	}
	if c.ended {
		return final
	}
	var buf []byte
	for _, mc := range c.conns {
		if mc.failed != nil {
			return *mc.failed
		}
		if mc.done {
			continue
		}
		var edits []milter.ModifyAction
		v := c.ask(ctx, mc, "message", func() (*milter.Action, error) {
			// The queue id goes with the DATA stage: libmilter files macros
			// only under CONNECT, HELO, MAIL, RCPT, DATA, EOH and BODYEOB
			// (st_macros) and drops others silently; from DATA on,
			// smfi_getsymval finds it in the header, end-of-header, body
			// and end-of-message callbacks.
			if err := mc.cs.Macros(milter.CodeData, "i", id); err != nil {
				return nil, err
			}
			for _, f := range fields {
				act, err := mc.cs.HeaderField(f.name, f.value())
				if err != nil || act.Code != milter.ActContinue {
					return act, err
				}
			}
			act, err := mc.cs.HeaderEnd()
			if err != nil || act.Code != milter.ActContinue {
				return act, err
			}
			r, err := body()
			if err != nil {
				return nil, &localError{err}
			}
			if buf == nil {
				buf = make([]byte, milter.MaxBodyChunk)
			}
		chunks:
			for {
				n, rerr := io.ReadFull(r, buf)
				if n > 0 {
					act, err := mc.cs.BodyChunk(buf[:n])
					switch {
					case err != nil:
						return nil, err
					case act.Code == milter.ActSkip:
						break chunks // SMFIR_SKIP: no more body wanted
					case act.Code != milter.ActContinue:
						return act, nil
					}
				}
				if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
					break
				}
				if rerr != nil {
					return nil, &localError{rerr}
				}
			}
			mods, act, err := mc.cs.End()
			if err != nil {
				return nil, err
			}
			if err := mc.allowed(mods); err != nil {
				return nil, err
			}
			edits = mods
			return act, nil
		})
		if v.kind != verdictContinue && v.kind != verdictAccept {
			return v
		}
		for _, e := range edits {
			if e.Code != milter.ActQuarantine {
				final.edits = append(final.edits, e)
			} else if final.reason == "" {
				final.reason, final.milter = e.Reason, mc.spec.Name
				if final.reason == "" {
					final.reason = "quarantined by " + mc.spec.Name
				}
			}
		}
	}
	if final.reason != "" {
		final.kind = verdictQuarantine
	}
	return final
}

// localError marks a failure on our side (reading the spool), which is
// not the milter's fault.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// allowed checks that every modification is one this milter was offered.
func (mc *milterConn) allowed(mods []milter.ModifyAction) error {
	for _, m := range mods {
		var need MilterActions
		switch m.Code {
		case milter.ActAddHeader, milter.ActInsertHeader:
			need = MilterAddHeader
		case milter.ActChangeHeader:
			need = MilterChangeHeader
		case milter.ActQuarantine:
			need = MilterQuarantine
		default:
			// SMFIR_REPLBODY, SMFIR_ADDRCPT, SMFIR_DELRCPT, SMFIR_CHGFROM:
			// never offered at negotiation.
			return fmt.Errorf("milter sent modification %q, which was not negotiated", rune(m.Code))
		}
		if mc.spec.Actions&need == 0 {
			return fmt.Errorf("milter sent modification %q, which was not negotiated", rune(m.Code))
		}
		if m.Code != milter.ActQuarantine && !validFieldName(m.HeaderName) {
			return fmt.Errorf("milter sent header modification with a bad field name %q", printable(m.HeaderName))
		}
		if m.Code != milter.ActQuarantine && m.HeaderValue != "" {
			if _, err := newField(m.HeaderName, m.HeaderValue); err != nil {
				return fmt.Errorf("milter sent header %s with a value that would corrupt the header block", printable(m.HeaderName))
			}
		}
	}
	return nil
}

// ask runs one exchange with a milter and turns its answer (or failure)
// into a verdict, counting it.
func (c *milterChain) ask(ctx context.Context, mc *milterConn, stage string, f func() (*milter.Action, error)) milterVerdict {
	name := mc.spec.Name
	act, err := f()
	if err == nil && act == nil {
		err = errors.New("milter gave no answer")
	}
	if err != nil {
		var le *localError
		if errors.As(err, &le) {
			return milterVerdict{kind: verdictTempfail, milter: name, reply: errTemporary}
		}
		mc.abandon()
		fa := mc.spec.OnFailure
		c.srv.metrics.milterFailures.WithLabelValues(name, fa.String()).Inc()
		c.log.Warn("milter failed", "milter", name, "stage", stage, "default_action", fa.String(), "err", err)
		switch fa {
		case MilterFailAccept:
			return milterVerdict{kind: verdictContinue, milter: name}
		case MilterFailReject:
			mc.failed = &milterVerdict{kind: verdictReject, milter: name, reply: errMilterReject}
		default:
			mc.failed = &milterVerdict{kind: verdictTempfail, milter: name, reply: errMilterTempfail}
		}
		return *mc.failed
	}
	v := milterVerdict{milter: name}
	switch act.Code {
	case milter.ActContinue, milter.ActSkip:
		v.kind = verdictContinue
	case milter.ActAccept:
		v.kind = verdictAccept
		mc.finish()
	case milter.ActDiscard:
		v.kind = verdictDiscard
		mc.finish()
	case milter.ActReject:
		v.kind, v.reply = verdictReject, errMilterReject
	case milter.ActTempFail:
		v.kind, v.reply = verdictTempfail, errMilterTempfail
	case milter.ActReplyCode:
		v.reply = milterReply(act.SMTPCode, act.SMTPText)
		v.kind = verdictReject
		if v.reply.Code < 500 {
			v.kind = verdictTempfail
		}
	}
	if v.refusal() && stage != "rcpt" {
		// A refused recipient leaves the transaction going (xxfi_envrcpt);
		// anywhere else the milter is done with it.
		mc.finish()
	}
	c.srv.metrics.milterActions.WithLabelValues(name, v.kind.String()).Inc()
	if v.kind != verdictContinue {
		c.log.Info("milter verdict", "milter", name, "stage", stage, "verdict", v.kind.String())
	}
	return v
}

// milterReply turns an SMFIR_REPLYCODE ("550 5.7.1 text", as set with
// smfi_setreply) into our reply. A code that is neither 4xx nor 5xx
// becomes 550 5.7.1 (libmilter refuses such codes at smfi_setreply).
func milterReply(code int, text string) *gosmtp.SMTPError {
	if code < 400 || code > 599 {
		code = 550
	}
	// A multi-line reply arrives as "text\r\n550-5.7.1 more"; one line is
	// kept, without the continuation prefixes.
	text = strings.ReplaceAll(text, "\r\n", "\n")
	line, _, _ := strings.Cut(text, "\n")
	enh := ""
	if first, rest, ok := strings.Cut(strings.TrimSpace(line), " "); ok || first != "" {
		if ec := parseEnhanced(first); ec != gosmtp.EnhancedCodeNotSet && ec[0] == code/100 {
			enh, line = first, rest
		}
	}
	if enh == "" {
		enh = strconv.Itoa(code/100) + ".7.1"
	}
	line = strings.TrimSpace(line)
	if line == "" {
		line = "message refused by content filter"
	}
	return reply(code, enh, "%s", printable(line))
}

// open connects and negotiates (SMFIC_OPTNEG). The connection is closed
// when ctx ends, so a session being torn down never waits for a milter.
func (mc *milterConn) open(ctx context.Context) error {
	d := &capturingDialer{d: net.Dialer{Timeout: mc.spec.ConnectTimeout}, ctx: ctx}
	cl := milter.NewClientWithOptions(mc.spec.network, mc.spec.addr, milter.ClientOptions{
		Dialer:       d,
		ReadTimeout:  mc.spec.ReadTimeout,
		WriteTimeout: mc.spec.CommandTimeout,
		ActionMask:   mc.spec.actionMask(),
		ProtocolMask: milterSteps,
	})
	cs, err := cl.Session()
	if d.conn != nil {
		mc.conn = d.conn
		conn := d.conn
		mc.stop = context.AfterFunc(ctx, func() { conn.Close() })
	}
	if err != nil {
		return err
	}
	mc.cs = cs
	return nil
}

// capturingDialer keeps the connection it dialled, so that it can be
// closed from outside go-milter.
type capturingDialer struct {
	d    net.Dialer
	ctx  context.Context
	conn net.Conn
}

func (d *capturingDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(d.ctx, network, addr)
	d.conn = c
	return c, err
}

// finish ends the milter's part in this transaction after a final answer
// (no SMFIC_ABORT is due: libmilter resets itself after one).
func (mc *milterConn) finish() {
	mc.done = true
}

// abandon drops a milter that failed: its connection is closed without a
// goodbye, which could block on a hung milter.
func (mc *milterConn) abandon() {
	mc.done = true
	if mc.stop != nil {
		mc.stop()
	}
	if mc.conn != nil {
		mc.conn.Close()
	}
	mc.cs, mc.conn = nil, nil
}

// closeConn ends the session: SMFIC_ABORT if a message is in progress,
// then SMFIC_QUIT.
func (mc *milterConn) closeConn() {
	if mc.stop != nil {
		mc.stop()
	}
	if mc.cs != nil {
		// go-milter's Close returns without closing the connection when
		// it cannot write SMFIC_QUIT (a milter that went away).
		_ = mc.cs.Close()
	}
	if mc.conn != nil {
		mc.conn.Close()
	}
	mc.cs, mc.conn = nil, nil
}

// end stops asking every milter.
func (c *milterChain) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
}

// close ends every milter session of the transaction.
func (c *milterChain) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mc := range c.conns {
		mc.closeConn()
	}
	c.conns = nil
	c.ended = true
}
