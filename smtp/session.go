package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// session is one SMTP session between two EHLOs (go-smtp makes a new one
// after STARTTLS, forgetting everything said before, RFC 3207 §4.2).
//
// go-smtp calls Data on a goroutine of its own for BDAT, and RSET or QUIT
// may arrive while it runs; mu guards the fields below it, and Data works
// on a snapshot taken when it starts.
type session struct {
	srv    *Server
	conn   *gosmtp.Conn
	tc     *trackedConn
	ctx    context.Context
	cancel context.CancelFunc
	tls    bool

	mu   sync.Mutex
	log  *slog.Logger
	user *directory.User // set after AUTH
	tx   transaction
}

// transaction is the mail transaction in progress; Reset clears it.
type transaction struct {
	hasFrom bool
	from    string
	utf8    bool
	size    int64              // SIZE= declared at MAIL (RFC 1870), 0 if none
	may     sendSet            // submission: addresses the user may send as
	rcpts   []string           // accepted envelope recipients, as given
	targets []store.Recipient  // one per distinct local account
	relays  []routing.Decision // remote targets, for the outbound queue
	milters *milterChain       // nil without milters
}

func newSession(s *Server, c *gosmtp.Conn, tc *trackedConn, tlsOn bool) *session {
	ctx, cancel := context.WithCancel(s.ctx)
	return &session{
		srv: s, conn: c, tc: tc, ctx: ctx, cancel: cancel, tls: tlsOn,
		log: s.log.With("conn", tc.id, "remote", tc.ip.String()),
	}
}

func (s *session) submission() bool { return s.srv.opts.Mode != ModeMX }

// Reset implements gosmtp.Session (RSET, and after each message).
func (s *session) Reset() {
	s.mu.Lock()
	chain := s.tx.milters
	s.tx = transaction{}
	s.mu.Unlock()
	chain.close()
}

// state returns the logger, the authenticated user and a copy of the
// transaction.
func (s *session) state() (*slog.Logger, *directory.User, transaction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log, s.user, s.tx
}

// Logout implements gosmtp.Session.
func (s *session) Logout() error {
	s.Reset()
	s.cancel()
	return nil
}

// Mail implements gosmtp.Session.
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	defer s.srv.metrics.observe("mail", time.Now())
	s.Reset()
	log, user, _ := s.state()
	var may sendSet
	if from != "" {
		if why := addressSyntax(from); why != "" {
			return reply(553, "5.1.7", "bad sender address syntax: %s", why)
		}
	}
	if s.submission() {
		switch {
		case !s.tls:
			return errTLSRequired
		case user == nil:
			return errAuthRequired
		}
		addrs, err := s.srv.opts.Auth.SendAddresses(s.ctx, user.ID)
		if err != nil {
			log.Error("send addresses lookup failed", "err", err)
			return errLookup
		}
		may = newSendSet(addrs)
		may.taken = s.subaddressTaken
		if !may.allows(from) {
			log.Info("sender refused", "from", from, "rule", "sender-not-owned")
			return reply(553, "5.7.1", "sender address <%s> is not one of your addresses", printable(from))
		}
	}
	tx := transaction{hasFrom: true, from: from, utf8: opts != nil && opts.UTF8, may: may}
	if opts != nil {
		tx.size = opts.Size
	}
	login := ""
	if user != nil {
		login = user.Address
	}
	chain, err := s.startMilters(from, &tx, login)
	if err != nil {
		return err
	}
	tx.milters = chain
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tx = tx
	return nil
}

// subaddressTaken reports whether addr (a sub-address of the user's own
// base address) is itself some other entry's address, when the
// Authenticator can look addresses up (directory.Directory can). A failed
// lookup counts as taken: refusing a sender is safer than letting a user
// send as someone else.
func (s *session) subaddressTaken(addr, base string) bool {
	l, ok := s.srv.opts.Auth.(AddressLookup)
	if !ok {
		return false
	}
	e, err := l.LookupAddress(s.ctx, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return false
	case err != nil:
		log, _, _ := s.state()
		log.Warn("sender lookup failed", "from", addr, "err", err)
		return true
	}
	c, err := directory.CanonicalAddress(e.Address)
	return err != nil || c != base
}

// Rcpt implements gosmtp.Session: the routing decision is made now, and
// only recipients this server can deliver to are accepted.
func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	defer s.srv.metrics.observe("rcpt", time.Now())
	m := s.srv.metrics.rcpts
	log, user, tx := s.state()
	if why := addressSyntax(to); why != "" {
		m.WithLabelValues("syntax").Inc()
		return reply(553, "5.1.3", "bad recipient address syntax: %s", why)
	}
	authed := user != nil
	if !authed {
		if rule := senderRouting(to); rule != "" {
			m.WithLabelValues("relay_denied").Inc()
			log.Info("recipient refused", "rcpt", to, "decision", "relay", "rule", rule)
			return reply(554, "5.7.1", "<%s>: relay access denied (%s)", printable(to), rule)
		}
	}
	res, err := s.srv.opts.Router.Resolve(s.ctx, routing.Envelope{From: tx.from, Authenticated: authed, ClientIP: s.tc.ip}, to)
	if err != nil {
		m.WithLabelValues("error").Inc()
		log.Error("routing failed", "rcpt", to, "err", err)
		return errLookup
	}
	var deliver, relays []routing.Decision
	var relay, reject *routing.Decision
	// take sorts one decision into local deliveries and remote targets
	// and reports whether it was one of them.
	take := func(d *routing.Decision, what string) bool {
		log.Info(what, "rcpt", to, "decision", d.Kind.String(), "rule", d.Rule,
			"address", d.Address, "account", d.Account, "code", d.Code)
		switch d.Kind {
		case routing.Deliver:
			deliver = append(deliver, *d)
		case routing.Relay:
			relays = append(relays, *d)
			if relay == nil {
				relay = d
			}
		default:
			return false
		}
		return true
	}
	direct := false
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if !take(d, "routing decision") {
			if reject == nil {
				reject = d
			}
			continue
		}
		// The recipient itself is remote, as opposed to an alias or
		// group member that is.
		if d.Kind == routing.Relay && (strings.EqualFold(d.Address, res.Recipient) || strings.EqualFold(d.Address, to)) {
			direct = true
		}
	}
	// Always-BCC copies: local ones are delivered with the message, a
	// remote one needs the outbound queue like any remote target, and a
	// refused one (a misconfigured address) is logged, not the sender's
	// problem.
	if (relay == nil || s.srv.opts.Queue != nil) && (len(deliver) > 0 || relay != nil) {
		for i := range res.Copies {
			if d := &res.Copies[i]; !take(d, "routing copy") {
				log.Warn("always-bcc copy refused", "rcpt", to, "address", d.Address, "rule", d.Rule, "reason", d.Reason)
			}
		}
	}
	switch {
	case relay != nil && direct && !authed && relay.Permit == "":
		// A router that does not judge relaying itself (routing.Table
		// does, and says why in Permit).
		m.WithLabelValues("relay_denied").Inc()
		return reply(554, "5.7.1", "<%s>: relay access denied", printable(to))
	case relay != nil && s.srv.opts.Queue == nil:
		// Remote targets (the recipient itself for an authenticated
		// user, or members of a local list) would need the outbound
		// queue. Refusing temporarily keeps the message with the
		// sender; accepting would drop those targets silently.
		m.WithLabelValues("no_outbound").Inc()
		return errNoOutbound
	case len(deliver) == 0 && relay != nil:
		// Only remote targets: the outbound queue takes them all.
		if err := tx.milters.rcpt(s.ctx, to, tx.utf8); err != nil {
			m.WithLabelValues("milter").Inc()
			return err
		}
		m.WithLabelValues("relay").Inc()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tx.addRelays(relays)
		s.tx.rcpts = append(s.tx.rcpts, to)
		return nil
	case len(deliver) == 0 && reject != nil && reject.Rule == routing.RuleRelayDenied:
		m.WithLabelValues("relay_denied").Inc()
		log.Info("recipient refused", "rcpt", to, "decision", "relay", "rule", reject.Rule)
		return rejectReply(to, reject)
	case len(deliver) == 0 && reject != nil:
		m.WithLabelValues("reject").Inc()
		return rejectReply(to, reject)
	case len(deliver) == 0:
		m.WithLabelValues("error").Inc()
		log.Error("router returned no decision", "rcpt", to)
		return errTemporary
	}
	if deliver = s.withinQuota(log, deliver, tx.size); len(deliver) == 0 && relay == nil {
		m.WithLabelValues("quota").Inc()
		return reply(452, "4.2.2", "<%s>: mailbox full", printable(to))
	}
	if err := tx.milters.rcpt(s.ctx, to, tx.utf8); err != nil {
		m.WithLabelValues("milter").Inc()
		return err
	}
	m.WithLabelValues("deliver").Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deliver {
		s.tx.addTarget(d)
	}
	s.tx.addRelays(relays)
	s.tx.rcpts = append(s.tx.rcpts, to)
	return nil
}

// withinQuota drops the delivery targets whose mailbox cannot take a
// message of the declared size, when the Deliverer reports quotas. Checking
// here, per recipient, keeps one full mailbox from failing the message for
// every other recipient at DATA (the store delivers all-or-nothing). A
// failed lookup keeps the target: the store enforces quotas again at
// delivery.
func (s *session) withinQuota(log *slog.Logger, targets []routing.Decision, size int64) []routing.Decision {
	qr, ok := s.srv.opts.Deliverer.(QuotaReporter)
	if !ok {
		return targets
	}
	kept := targets[:0:0]
	for _, d := range targets {
		u, q, err := qr.Usage(s.ctx, d.Account)
		if err != nil {
			log.Warn("quota lookup failed", "account", d.Account, "err", err)
			kept = append(kept, d)
			continue
		}
		if (q.MaxBytes > 0 && u.Bytes+max(size, 1) > q.MaxBytes) || (q.MaxMessages > 0 && u.Messages+1 > q.MaxMessages) {
			log.Info("recipient over quota", "address", d.Address, "account", d.Account,
				"bytes", u.Bytes, "max_bytes", q.MaxBytes, "messages", u.Messages, "max_messages", q.MaxMessages)
			continue
		}
		kept = append(kept, d)
	}
	return kept
}

// rejectReply answers with the decision's own code, falling back to a
// generic permanent refusal if the decision carries no usable code.
func rejectReply(to string, d *routing.Decision) *gosmtp.SMTPError {
	code, enh, reason := d.Code, d.Enhanced, d.Reason
	if code < 400 || code > 599 {
		code, enh = 550, "5.1.1"
	}
	if enh == "" || enh[0] != byte('0'+code/100) {
		enh = strconv.Itoa(code/100) + ".0.0"
	}
	if reason == "" {
		reason = "recipient rejected"
	}
	if d.Rule != "" {
		reason += " (" + d.Rule + ")"
	}
	return reply(code, enh, "<%s>: %s", printable(to), printable(reason))
}

// addTarget adds one store recipient per distinct account: a user reached
// through two aliases gets one copy.
func (tx *transaction) addTarget(d routing.Decision) {
	for _, t := range tx.targets {
		if t.Account == d.Account {
			return
		}
	}
	tx.targets = append(tx.targets, store.Recipient{Account: d.Account, Mailbox: d.Mailbox})
}

// addRelays adds remote targets, one per address and hop.
func (tx *transaction) addRelays(ds []routing.Decision) {
next:
	for _, d := range ds {
		for _, r := range tx.relays {
			if strings.EqualFold(r.Address, d.Address) && r.Hop.String() == d.Hop.String() {
				continue next
			}
		}
		tx.relays = append(tx.relays, d)
	}
}

// sourceReader remembers how reading the client's data ended.
type sourceReader struct {
	r   io.Reader
	n   int64
	eof bool
	err error // first error other than io.EOF
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err == io.EOF {
		r.eof = true
	} else if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// Data implements gosmtp.Session for DATA and BDAT. The reply is 250 only
// after the Deliverer has stored the message durably.
func (s *session) Data(r io.Reader) error {
	defer s.srv.metrics.observe("data", time.Now())
	if !s.tc.beginData() {
		s.srv.metrics.rejected.WithLabelValues(reasonShutdown).Inc()
		return errShuttingDown
	}
	defer s.tc.endData()
	r, done := takeOverData(r, s.srv.opts.MaxMessageBytes)
	defer done()

	m := s.newIncoming(r)
	content, fromDomain, err := s.checkSubmissionHeader(m)
	if err != nil {
		return err
	}
	m.now = s.srv.opts.Now()
	t := s.trace(m)
	sc := screened{content: content, targets: m.tx.targets}
	if s.needsSpool() || m.tx.milters != nil {
		// Whole-message checks (milters, DKIM, DMARC, signing) must see
		// all of it before the first byte reaches the store.
		sp := newSpool(s.srv.opts.SpoolDir, 0)
		defer sp.Close()
		if err := s.screen(m, sp, fromDomain, &sc); err != nil {
			return err
		}
	}
	// The end of the client's data is not enough to show the Deliverer
	// read everything: with a spool, the client's data has all been read
	// before delivery starts. What counts is the end of what it was given.
	msg := &sourceReader{r: io.MultiReader(bytes.NewReader(traceHeaders(t)), strings.NewReader(sc.prefix), sc.content)}
	if sc.quarantine != nil {
		return s.hold(m.log, m.id, msg, m.src, m.tx, sc.targets, m.now, *sc.quarantine)
	}
	out, queued, err := s.queueRelayCopy(m, msg)
	if err != nil {
		return err
	}
	var toStore io.Reader = msg
	if queued != nil {
		defer s.srv.opts.Queue.Abort(out)
		defer queued.Close()
		toStore = queued
	}
	delivered, err := s.deliverLocal(m, sc.targets, msg, toStore)
	if err != nil {
		return err
	}
	if err := s.commitRelayCopy(m, out); err != nil {
		return err
	}
	return s.accept(m, delivered)
}

// incoming is the message of one Data call: the snapshot of the session
// taken when it started, and the readers over the client's data.
type incoming struct {
	id   string
	log  *slog.Logger
	user *directory.User
	tx   transaction
	src  *sourceReader   // the client's data, as read
	norm *lineNormalizer // src with line endings normalised
	now  time.Time       // the message's arrival, set once its header is read
}

func (s *session) newIncoming(r io.Reader) *incoming {
	sessLog, user, tx := s.state()
	id := rand.Text()[:16]
	src := &sourceReader{r: r}
	return &incoming{
		id: id, log: sessLog.With("msg_id", id), user: user, tx: tx,
		src: src, norm: newLineNormalizer(src),
	}
}

// checkSubmissionHeader reads the header block on submission and checks
// its senders against what the user may send as; it returns the message
// content (the header read, then the rest) and the From domain for DKIM
// signing. On the MX the content is the normalised data as is.
func (s *session) checkSubmissionHeader(m *incoming) (content io.Reader, fromDomain string, err error) {
	var body io.Reader = m.norm
	var header []byte
	if s.submission() {
		br := bufio.NewReaderSize(m.norm, 4096)
		header, err = readHeaderBlock(br, s.srv.opts.MaxHeaderBytes)
		if err != nil {
			if m.src.err != nil {
				return nil, "", s.readFailed(m.log, m.src.err)
			}
			s.srv.metrics.rejected.WithLabelValues(reasonHeader).Inc()
			m.log.Info("message refused", "rule", "header-too-large", "limit", s.srv.opts.MaxHeaderBytes)
			return nil, "", reply(552, "5.3.4", "message header block exceeds %d bytes", s.srv.opts.MaxHeaderBytes)
		}
		var rep *gosmtp.SMTPError
		if fromDomain, rep = checkHeaderSenders(header, m.tx.may); rep != nil {
			reason := reasonHeader
			if rep.EnhancedCode == (gosmtp.EnhancedCode{5, 7, 1}) {
				reason = reasonSender
			}
			s.srv.metrics.rejected.WithLabelValues(reason).Inc()
			m.log.Info("message refused", "rule", "header-senders", "reply", rep.Message)
			return nil, "", rep
		}
		body = br
	}
	return io.MultiReader(bytes.NewReader(header), body), fromDomain, nil
}

// trace is what our trace fields record of the message.
func (s *session) trace(m *incoming) traceInfo {
	t := traceInfo{
		From: m.tx.from, Helo: s.conn.Hostname(), IP: s.tc.ip, Hostname: s.srv.opts.Hostname,
		TLS: s.tls, Auth: m.user != nil, UTF8: m.tx.utf8, ID: m.id, Date: m.now,
	}
	if len(m.tx.rcpts) == 1 {
		t.Recipient = m.tx.rcpts[0]
	}
	return t
}

// screened is the message as the whole-message checks left it.
type screened struct {
	prefix     string    // fields to put below our trace fields
	content    io.Reader // the message after the prefix
	targets    []store.Recipient
	quarantine *milterVerdict // set when a milter asked for quarantine
}

// screen spools the message and runs the whole-message checks over it:
// the milters, then message authentication or signing. It updates sc, or
// returns the reply that ends the transaction (a milter's discard is a
// 250).
func (s *session) screen(m *incoming, sp *spool, fromDomain string, sc *screened) error {
	if _, err := sp.ReadFrom(sc.content); err != nil {
		if m.src.err != nil {
			return s.readFailed(m.log, m.src.err)
		}
		return writeFailed(m.log, "spooling", err)
	}
	source := sp.Reader
	if m.tx.milters != nil {
		v, src, err := s.runMilters(m.log, m.id, sp, m.tx.milters)
		switch {
		case err != nil:
			return err
		case v.kind == verdictDiscard:
			// Answered as accepted, as the milter asked
			// (SMFIR_DISCARD), and dropped.
			s.srv.metrics.rejected.WithLabelValues(reasonDiscarded).Inc()
			m.log.Info("message discarded", "milter", v.milter, "from", m.tx.from, "rcpts", len(m.tx.rcpts), "bytes", sp.Size())
			return reply(250, "2.0.0", "message accepted, id %s", m.id)
		case v.kind == verdictQuarantine:
			sc.quarantine = &v
		}
		source = src
	}
	out, ok, err := s.checkMessage(m.log, sp.Reader, source, fromDomain, m.tx)
	switch {
	case err != nil:
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		m.log.Error("message authentication failed", "err", err)
		return errTemporary
	case out.refuse != nil:
		s.srv.metrics.rejected.WithLabelValues(reasonPolicy).Inc()
		return out.refuse
	case ok:
		sc.prefix, sc.content = out.prefix, out.content
		if out.junk {
			sc.targets = toJunk(sc.targets)
		}
	default:
		if sc.content, err = source(); err != nil {
			m.log.Error("spool reread failed", "err", err)
			return errTemporary
		}
	}
	return nil
}

// queueRelayCopy writes the copy for remote targets to the outbound queue
// and opens it for the local delivery to read, so that the message is read
// from the client once. It returns "", nil without remote targets. The
// copy is durable before the 250; the caller aborts it (a no-op once
// committed) and closes the reader.
func (s *session) queueRelayCopy(m *incoming, msg *sourceReader) (string, io.ReadCloser, error) {
	if len(m.tx.relays) == 0 {
		return "", nil, nil
	}
	out := s.srv.opts.Queue
	id, err := out.Spool(s.ctx, msg)
	if m.src.err != nil {
		if err == nil {
			out.Abort(id)
		}
		return "", nil, s.readFailed(m.log, m.src.err)
	}
	if err != nil {
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		return "", nil, writeFailed(m.log, "queueing", err)
	}
	f, err := out.OpenSpooled(id)
	if err != nil {
		m.log.Error("queue reread failed", "err", err)
		out.Abort(id)
		return "", nil, errTemporary
	}
	return id, f, nil
}

// deliverLocal hands the message to the Deliverer for the local targets
// and maps what went wrong, on either side, to a reply.
func (s *session) deliverLocal(m *incoming, targets []store.Recipient, msg *sourceReader, toStore io.Reader) ([]store.Delivered, error) {
	var delivered []store.Delivered
	var err error
	if len(targets) > 0 {
		delivered, err = s.srv.opts.Deliverer.Deliver(s.ctx, store.Delivery{Recipients: targets, InternalDate: m.now}, toStore)
	}
	if m.src.err != nil {
		// The client's data failed (too large, line too long,
		// connection lost): whatever the store said, this is the
		// reason. The store saw the error too and kept nothing.
		return nil, s.readFailed(m.log, m.src.err)
	}
	var qe *store.QuotaError
	switch {
	case errors.As(err, &qe):
		s.srv.metrics.rejected.WithLabelValues(reasonQuota).Inc()
		m.log.Info("message refused", "rule", "quota", "accounts", qe.Accounts, "resource", qe.Resource)
		return nil, errQuota
	case err != nil:
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		return nil, writeFailed(m.log, "delivery", err)
	case !msg.eof:
		// A Deliverer that returns before the end of the body stored
		// a truncated message; a retry (possible duplicate) is better
		// than acknowledging that.
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		m.log.Error("deliverer returned before the end of the message")
		return nil, errTemporary
	}
	return delivered, nil
}

// commitRelayCopy commits the queued copy for remote targets, if any, once
// the local copies are durable.
func (s *session) commitRelayCopy(m *incoming, out string) error {
	if out == "" {
		return nil
	}
	// Local copies are durable; a failure here answers 451 and the
	// client's retry may deliver them twice (at least once).
	if err := s.srv.opts.Queue.Commit(s.ctx, out, m.tx.from, m.tx.utf8, m.tx.relays); err != nil {
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		return writeFailed(m.log, "queueing", err)
	}
	m.log.Info("message queued", "queue_id", out, "relay_rcpts", len(m.tx.relays))
	return nil
}

// accept counts and logs a message that is durable everywhere it goes, and
// returns the 250 reply.
func (s *session) accept(m *incoming, delivered []store.Delivered) error {
	s.srv.metrics.accepted.Inc()
	s.srv.metrics.bytes.Add(float64(m.src.n))
	accounts := make([]string, len(delivered))
	for i, d := range delivered {
		accounts[i] = d.Account
	}
	m.log.Info("message accepted", "from", m.tx.from, "rcpts", len(m.tx.rcpts), "accounts", accounts,
		"bytes", m.src.n, "normalised_line_endings", m.norm.fixed)
	// go-smtp writes an *SMTPError's code as is, so a 2xx "error" is the
	// way to put the message id into the reply.
	return reply(250, "2.0.0", "message accepted, id %s", m.id)
}

// runMilters sends the spooled message to the milters (step 4 of the data
// path) and returns their verdict and the message to deliver: the spool
// as received, or with the milters' header changes. A refusal is returned
// as the error.
func (s *session) runMilters(log *slog.Logger, id string, sp *spool, chain *milterChain) (milterVerdict, func() (io.Reader, error), error) {
	r, err := sp.Reader()
	if err != nil {
		log.Error("spool reread failed", "err", err)
		return milterVerdict{}, nil, errTemporary
	}
	block, err := readHeaderBlock(bufio.NewReaderSize(r, 4096), s.srv.opts.MaxHeaderBytes)
	if errors.Is(err, errHeaderTooLarge) {
		s.srv.metrics.rejected.WithLabelValues(reasonHeader).Inc()
		log.Info("message refused", "rule", "header-too-large", "limit", s.srv.opts.MaxHeaderBytes)
		return milterVerdict{}, nil, reply(552, "5.3.4", "message header block exceeds %d bytes", s.srv.opts.MaxHeaderBytes)
	}
	if err != nil {
		log.Error("spool reread failed", "err", err)
		return milterVerdict{}, nil, errTemporary
	}
	fields, term := parseHeaderFields(block)
	off := int64(len(block))
	body := func() (io.Reader, error) { return sp.section(off) }
	named := make([]headerField, 0, len(fields))
	for _, f := range fields {
		if f.name != "" {
			named = append(named, f)
		}
	}
	v := chain.message(s.ctx, id, named, body)
	switch v.kind {
	case verdictReject, verdictTempfail:
		s.srv.metrics.rejected.WithLabelValues(reasonMilter).Inc()
		log.Info("message refused", "rule", "milter", "milter", v.milter, "verdict", v.kind.String(), "reply", v.reply.Message)
		return v, nil, v.reply
	case verdictDiscard:
		return v, nil, nil
	}
	if len(v.edits) == 0 {
		return v, sp.Reader, nil
	}
	edited, err := applyHeaderEdits(fields, v.edits, 2*s.srv.opts.MaxHeaderBytes)
	if err != nil {
		s.srv.metrics.rejected.WithLabelValues(reasonMilter).Inc()
		log.Warn("milter header changes refused", "err", err)
		return v, nil, errMilterTempfail
	}
	log.Info("milter header changes applied", "changes", len(v.edits))
	newBlock := joinFields(edited, term)
	return v, func() (io.Reader, error) {
		rest, err := sp.section(off)
		return io.MultiReader(bytes.NewReader(newBlock), rest), err
	}, nil
}

// hold puts an accepted message into the quarantine, as a milter asked
// (SMFIR_QUARANTINE), with the delivery plan a release carries out. The
// reply is 250 only once both are durable.
func (s *session) hold(log *slog.Logger, id string, msg, src *sourceReader, tx transaction, targets []store.Recipient, now time.Time, v milterVerdict) error {
	qr := s.srv.opts.Quarantine
	if qr == nil {
		s.srv.metrics.rejected.WithLabelValues(reasonMilter).Inc()
		log.Error("milter asked for quarantine but the server has none; message refused temporarily", "milter", v.milter, "reason", v.reason)
		return errMilterTempfail
	}
	qid, err := qr.hold(s.ctx, msg, quarantineEntry{
		From: tx.from, UTF8: tx.utf8, Rcpts: tx.rcpts, Targets: targets, Milter: v.milter, Reason: v.reason, Created: now,
	}, tx.relays)
	if src.err != nil {
		return s.readFailed(log, src.err)
	}
	if err != nil {
		s.srv.metrics.rejected.WithLabelValues(reasonStore).Inc()
		return writeFailed(log, "quarantine", err)
	}
	s.srv.metrics.accepted.Inc()
	s.srv.metrics.bytes.Add(float64(src.n))
	log.Info("message accepted into quarantine", "quarantine_id", qid, "milter", v.milter, "reason", v.reason,
		"from", tx.from, "rcpts", len(tx.rcpts), "bytes", src.n)
	return reply(250, "2.0.0", "message accepted, id %s", id)
}

// writeFailed maps an error writing the message (to the spool, the
// queue, the store or the quarantine) to a reply: 452 4.3.1 when the disk
// is full (RFC 5321 §4.2.2 "insufficient system storage", RFC 3463 §3.4
// "mail system full"), which tells the client what happened and that a
// later retry may succeed, and 451 4.3.0 for anything else.
func writeFailed(log *slog.Logger, what string, err error) error {
	if errors.Is(store.NoSpace(err), store.ErrNoSpace) {
		log.Warn(what+" failed: the disk is full", "err", err)
		return errNoSpace
	}
	log.Error(what+" failed", "err", err)
	return errTemporary
}

// readFailed maps an error reading the client's data to a reply.
func (s *session) readFailed(log *slog.Logger, err error) error {
	switch {
	case errors.Is(err, gosmtp.ErrDataTooLarge):
		s.srv.metrics.rejected.WithLabelValues(reasonSize).Inc()
		log.Info("message refused", "rule", "size", "limit", s.srv.opts.MaxMessageBytes)
		return reply(552, "5.3.4", "message exceeds the size limit of %d bytes", s.srv.opts.MaxMessageBytes)
	case errors.Is(err, gosmtp.ErrTooLongLine):
		s.srv.metrics.rejected.WithLabelValues(reasonLine).Inc()
		log.Info("message refused", "rule", "line-length", "limit", s.srv.opts.MaxLineLength)
		// RFC 5321 §4.5.3.1.6 bounds a text line at 1000 octets.
		return reply(554, "5.6.0", "message line longer than %d bytes", s.srv.opts.MaxLineLength)
	}
	s.srv.metrics.rejected.WithLabelValues(reasonAborted).Inc()
	log.Info("message transfer aborted", "err", err)
	return reply(451, "4.4.2", "message transfer interrupted")
}

// AuthMechanisms implements gosmtp.AuthSession: none on MX, so go-smtp
// announces no AUTH there; PLAIN (RFC 4616) and LOGIN on submission.
func (s *session) AuthMechanisms() []string {
	if !s.submission() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements gosmtp.AuthSession. go-smtp only calls it over TLS.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.submission() {
		return nil, gosmtp.ErrAuthUnsupported
	}
	if _, _, tx := s.state(); tx.hasFrom {
		// RFC 4954 §4: AUTH is not permitted during a mail transaction.
		return nil, reply(503, "5.5.1", "AUTH not permitted during a mail transaction")
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				s.srv.metrics.auth.WithLabelValues("failure").Inc()
				return reply(535, "5.7.8", "authorization identity must be empty or equal the login")
			}
			return s.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{authenticate: s.authenticate}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}
