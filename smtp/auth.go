package smtp

import (
	"errors"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailyard/mailyard/directory"
)

// authenticate checks one login for submission. The limiter reserves the
// check before the password is looked at, or refuses it (454 4.7.0, a
// temporary failure: RFC 4954 §6); a wrong password (535 5.7.8, RFC 4954
// §6) is answered only after the limiter's delay.
func (s *session) authenticate(login, password string) error {
	defer s.srv.metrics.observe("auth", time.Now())
	lim := s.srv.opts.AuthLimiter
	m := s.srv.metrics.auth
	sessLog, _, _ := s.state()
	log := sessLog.With("login", printable(login))
	// Keyed by the account the login names, so that its aliases share
	// one budget (directory.LoginKeyer).
	attempt, err := lim.Begin(s.ctx, s.tc.ip, directory.LimiterLogin(s.ctx, s.srv.opts.Auth, login))
	if err != nil {
		m.WithLabelValues("blocked").Inc()
		log.Warn("authentication refused", "rule", "auth-limit", "reason", err.Error())
		return errAuthBlocked
	}
	// Without a verdict below (account disabled, directory error, a
	// panic) the reservation is released and nothing counted.
	defer attempt.Abandon()
	user, err := s.srv.opts.Auth.Authenticate(s.ctx, login, password, directory.ProtoSMTP)
	switch {
	case err == nil:
		attempt.Succeeded()
		m.WithLabelValues("success").Inc()
		s.mu.Lock()
		s.user = &user
		s.log = sessLog.With("user", user.ID)
		s.mu.Unlock()
		log.Info("authenticated", "user", user.ID, "class", attempt.Class().String())
		return nil
	case errors.Is(err, directory.ErrAuthFailed):
		m.WithLabelValues("failure").Inc()
		delay := attempt.Failed()
		log.Warn("authentication failed", "delay", delay, "class", attempt.Class().String())
		if !s.sleep(delay) {
			return errShuttingDown
		}
		return errAuthFailed
	}
	switch {
	case errors.Is(err, directory.ErrDisabled):
		m.WithLabelValues("failure").Inc()
		log.Warn("authentication refused", "rule", "disabled-user")
		return reply(535, "5.7.8", "account disabled")
	case errors.Is(err, directory.ErrProtocolNotAllowed):
		m.WithLabelValues("failure").Inc()
		log.Warn("authentication refused", "rule", "protocol-not-allowed")
		return reply(535, "5.7.8", "mail submission is not allowed for this account")
	}
	m.WithLabelValues("error").Inc()
	log.Error("authentication error", "err", err)
	return errAuthTemporary
}

// sleep waits d unless the session ends first; it reports whether the
// full delay passed.
func (s *session) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// loginServer is the server side of the obsolete but ubiquitous LOGIN SASL
// mechanism (draft-murchison-sasl-login-00): the server prompts
// "Username:" then "Password:"; an initial response is the username.
// go-sasl ships only the client side.
type loginServer struct {
	authenticate func(login, password string) error
	step         int
	username     string
}

var errLoginUnexpected = errors.New("sasl: unexpected client response")

// Next implements sasl.Server.
func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if response == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.authenticate(l.username, string(response))
	}
	return nil, true, errLoginUnexpected
}

var _ sasl.Server = (*loginServer)(nil)
