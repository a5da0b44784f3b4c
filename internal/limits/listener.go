package limits

import (
	"net"
	"sync/atomic"
)

// Listener admits the connections of an inner listener through a
// [ConnLimiter]: Accept returns only connections that got a slot, and a
// connection's slot is released when it is closed. A connection over a
// limit is handed to Refuse (with ErrClientConnLimit or ErrConnLimit),
// which must close it; Refuse runs on its own goroutine, so a slow
// refusal never holds up the accept loop. At most MaxRefusing refusals
// run at once (default 64); beyond that a connection is closed without
// one, so a flood of refused connections costs bounded work.
type Listener struct {
	net.Listener
	Limiter *ConnLimiter
	// Refuse, if set, tells the client why before closing the
	// connection. Nil closes it at once.
	Refuse func(c net.Conn, err error)
	// MaxRefusing bounds the refusals in progress. Default 64.
	MaxRefusing int

	refusing atomic.Int64
}

// Accept returns the next connection that got a slot.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, err := l.Limiter.Acquire(AddrOf(c.RemoteAddr()))
		if err == nil {
			return &limitedConn{Conn: c, release: release}, nil
		}
		l.refuse(c, err)
	}
}

func (l *Listener) refuse(c net.Conn, err error) {
	limit := int64(l.MaxRefusing)
	if limit <= 0 {
		limit = 64
	}
	if l.Refuse == nil || l.refusing.Add(1) > limit {
		if l.Refuse != nil {
			l.refusing.Add(-1)
		}
		_ = c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		l.Refuse(c, err)
	}()
}

// limitedConn releases its slot when closed.
type limitedConn struct {
	net.Conn
	release func()
}

// Close closes the connection and releases its slot.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
