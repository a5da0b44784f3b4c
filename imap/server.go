package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/internal/limits"
	"github.com/mailyard/mailyard/store"
)

// ErrServerClosed is returned by Serve after Shutdown or Close, and by
// Shutdown and Close when called a second time.
var ErrServerClosed = errors.New("imap: server closed")

// capabilities is every capability the server announces beyond those the
// library adds by itself (SASL-IR, LITERAL-, STARTTLS, AUTH=PLAIN,
// LOGINDISABLED, UNSELECT, ENABLE, IDLE, UTF8=ACCEPT, APPENDLIMIT=n).
// Each one is implemented by the session; see the package documentation.
// Those that need an optional Backend interface are added by New only
// when the Backend has it (see quotaCaps).
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1:        {},
	imap.CapIMAP4rev2:        {},
	imap.CapNamespace:        {},
	imap.CapUIDPlus:          {},
	imap.CapESearch:          {},
	imap.CapSearchRes:        {},
	imap.CapListExtended:     {},
	imap.CapListStatus:       {},
	imap.CapMove:             {},
	imap.CapStatusSize:       {},
	imap.CapBinary:           {},
	imap.CapChildren:         {},
	imap.CapSpecialUse:       {},
	imap.CapCreateSpecialUse: {},
	imap.CapLiteralPlus:      {},
	imap.CapCondStore:        {},
	imap.CapQResync:          {},
	imap.CapID:               {},
	// sort.go, thread.go, within.go: RFC 5256, 5957, 5267 §3, 5032.
	imap.CapSort:        {},
	imap.CapSortDisplay: {},
	imap.CapESort:       {},
	// context.go: RFC 5267 §4.
	imapserver.CapContextSearch:                     {},
	imapserver.CapContextSort:                       {},
	"THREAD=" + imap.Cap(imap.ThreadOrderedSubject): {},
	"THREAD=" + imap.Cap(imap.ThreadReferences):     {},
	imap.CapWithin:                                  {},
	imap.CapMultiAppend:                             {}, // multiappend.go, RFC 3502
	imapserver.CapCatenate:                          {}, // catenate.go, RFC 4469
	imapserver.CapCompressDeflate:                   {}, // RFC 4978
	imap.CapSaveDate:                                {}, // msgext.go, RFC 8514
	imap.CapObjectID:                                {}, // msgext.go, RFC 8474
	imap.CapPreview:                                 {}, // preview.go, RFC 8970
	imapserver.CapSearchFuzzy:                       {}, // fuzzy.go, RFC 6203
}

// quotaCaps are announced when the Backend implements [Quotas] (RFC 9208).
var quotaCaps = []imap.Cap{imap.CapQuota, "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"}

// serverCaps returns the capabilities a server on b announces.
func serverCaps(b Backend) imap.CapSet {
	caps := make(imap.CapSet, len(capabilities)+len(quotaCaps))
	for c := range capabilities {
		caps[c] = struct{}{}
	}
	if _, ok := b.(Quotas); ok {
		for _, c := range quotaCaps {
			caps[c] = struct{}{}
		}
	}
	if _, ok := b.(Feed); ok {
		// notify.go: RFC 5465, on the store's change feed.
		caps[imap.CapNotify] = struct{}{}
	}
	if _, ok := b.(store.Metadata); ok {
		// metadata.go: RFC 5464, server and mailbox annotations.
		caps[imap.CapMetadata] = struct{}{}
		caps[imap.CapMetadataServer] = struct{}{}
		// list.go: LIST's METADATA return option (RFC 9590).
		caps[imap.CapListMetadata] = struct{}{}
	}
	return caps
}

// Server is one IMAP listener's server. Create it with [New]; it is safe
// for concurrent use.
type Server struct {
	opts Options
	is   *imapserver.Server
	// The Backend's optional interfaces, nil where it lacks one.
	quotas  Quotas
	meta    store.Metadata
	subs    Subscriptions
	feed    Feed
	conns   *limits.ConnLimiter
	log     *slog.Logger
	metrics *metrics
	recent  recentTable

	// ctx is the parent of every session's context; cancelled by Close
	// and at the end of Shutdown so that blocked store calls give up.
	ctx    context.Context
	cancel context.CancelFunc

	closing atomic.Bool
	// stopping is closed when Shutdown or Close begins: auth-failure
	// delays end early so that they do not hold the shutdown up.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// busy counts commands being executed; Shutdown waits for it to
	// reach zero so that a command in flight gets its tagged answer.
	busy atomic.Int64

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	sessions map[*session]struct{}

	headers *headerCache
	bodies  *bodyCache  // blobs of whole bodies fetched (see BlobOpener)
	cache   *storeCache // STATUS, LIST and poll answers (see ChangeCounter)

	feedMu sync.Mutex
	feeds  map[string]*accountFeed // by account ID; see watch
}

// New returns a server configured by opts (see [Options] for defaults).
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Server{
		metrics:  m,
		opts:     o,
		conns:    limits.NewConnLimiter(max(o.MaxConnsPerIP, 0), max(o.MaxConns, 0)),
		log:      o.Logger,
		recent:   recentTable{m: make(map[recentKey]uint32)},
		lns:      make(map[net.Listener]struct{}),
		sessions: make(map[*session]struct{}),
		feeds:    make(map[string]*accountFeed),
		headers:  newHeaderCache(headerCacheBytes),
		bodies:   newBodyCache(bodyCacheEntries),
		stopping: make(chan struct{}),
	}
	s.quotas, _ = o.Backend.(Quotas)
	s.subs, _ = o.Backend.(Subscriptions)
	s.meta, _ = o.Backend.(store.Metadata)
	s.feed, _ = o.Backend.(Feed)
	s.cache = newStoreCache(o.Backend)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	lopts := &imapserver.Options{
		NewSession:   s.newSession,
		Caps:         serverCaps(o.Backend),
		Logger:       s.log,
		InsecureAuth: o.AllowInsecureAuth,
		CommandDone: func(name string, d time.Duration) {
			s.metrics.commands.WithLabelValues(commandClass(name)).Observe(d.Seconds())
		},
	}
	if !o.ImplicitTLS {
		// With implicit TLS the connection is a *tls.Conn from the start:
		// the library then allows authentication and offers no STARTTLS.
		lopts.TLSConfig = o.TLSConfig
	}
	s.is = imapserver.New(lopts)
	return s, nil
}

// Serve accepts connections on l until Shutdown or Close. With
// Options.ImplicitTLS every connection starts with a TLS handshake.
// It returns ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	if s.closing.Load() {
		return ErrServerClosed
	}
	var ln net.Listener = &listener{Listener: l, s: s}
	if s.opts.ImplicitTLS {
		ln = tls.NewListener(ln, s.opts.TLSConfig)
	}
	s.mu.Lock()
	s.lns[l] = struct{}{}
	s.mu.Unlock()
	if s.closing.Load() {
		// Shutdown ran between the check above and the registration.
		_ = l.Close()
	}
	defer func() {
		s.mu.Lock()
		delete(s.lns, l)
		s.mu.Unlock()
	}()
	err := s.is.Serve(ln)
	if s.closing.Load() {
		return ErrServerClosed
	}
	if err == nil {
		// The library returns nil when the listener was closed under it.
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, lets commands in flight finish
// (until ctx ends), then says BYE to every client and closes the
// connections. Idle and idling clients are not waited for: IMAP sessions
// last hours, and every acknowledged change is already durable.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closing.Swap(true) {
		return ErrServerClosed
	}
	s.stop()
	s.closeListeners()
	var err error
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.busy.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
		}
	}
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		_ = sess.conn.Bye("Server shutting down")
	}
	s.cancel()
	_ = s.is.Close()
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	if s.closing.Swap(true) {
		return ErrServerClosed
	}
	s.stop()
	err := s.closeListeners()
	s.cancel()
	_ = s.is.Close()
	return err
}

func (s *Server) stop() {
	s.stoppingOnce.Do(func() { close(s.stopping) })
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for l := range s.lns {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// begin marks a command as running; the returned function ends it.
func (s *Server) begin() func() {
	s.busy.Add(1)
	return func() { s.busy.Add(-1) }
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	if s.closing.Load() {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	sess := newSession(s, c)
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	return sess, nil, nil
}

func (s *Server) forget(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// listener applies the connection limits before the library sees a
// connection.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := limits.AddrOf(c.RemoteAddr())
		release, err := l.s.conns.Acquire(ip)
		if err != nil {
			l.s.log.Warn("connection refused", "rule", "conn-limit", "client", ip.String(), "reason", err.Error())
			l.s.metrics.conns.WithLabelValues("limit").Inc()
			go l.refuse(c)
			continue
		}
		l.s.metrics.conns.WithLabelValues("accepted").Inc()
		l.s.metrics.open.Inc()
		open := l.s.metrics.open
		var once sync.Once
		return &limitedConn{Conn: c, release: func() {
			release()
			once.Do(open.Dec)
		}}, nil
	}
}

// refuse says why (on plain-text listeners; a TLS client would not
// understand clear text) and hangs up.
func (l *listener) refuse(c net.Conn) {
	if !l.s.opts.ImplicitTLS {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n")
	}
	_ = c.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// recentKey names one incarnation of a mailbox.
type recentKey struct {
	account, mailbox string
	uidValidity      uint32
}

// recentTable implements the \Recent flag of RFC 3501 §2.3.2 in process
// memory: for each mailbox, the highest UID some read-write session has
// already been told about. A message above it is recent for the next
// session that selects the mailbox read-write, and only for that one.
// After a restart every message counts as recent once more, as RFC 3501
// §2.3.2 asks when the server cannot tell ("SHOULD be considered recent").
type recentTable struct {
	mu sync.Mutex
	m  map[recentKey]uint32
}

// claim records that the caller has seen every UID up to upTo and returns
// the previous mark: UIDs above it are recent for the caller.
func (t *recentTable) claim(k recentKey, upTo uint32) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := t.m[k]
	if upTo > prev {
		t.m[k] = upTo
	}
	return prev
}

// peek returns the mark without moving it (EXAMINE, STATUS).
func (t *recentTable) peek(k recentKey) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k]
}
