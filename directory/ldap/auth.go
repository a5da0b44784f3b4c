package ldap

import (
	"context"
	"errors"
	"fmt"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/mailyard/mailyard/directory"
)

// AuthenticateAtSource checks a password by binding as the user (RFC 4513
// §5.1.3, simple bind), trying the servers in failover order. With a
// synced user it binds with the user's stored DN; otherwise it looks the
// login up with the service account, matching the login attribute (the
// value escaped as RFC 4515 §3 requires), and binds as the one entry
// found. The password is never stored or logged.
//
// An empty password is refused before anything is sent: RFC 4513 §5.1.2
// makes a simple bind with a name and no password an unauthenticated
// bind that servers may accept. Errors: directory.ErrAuthFailed (wrong
// password, unknown or ambiguous login), ErrUnavailable (no server).
func (c *Connector) AuthenticateAtSource(ctx context.Context, login string, user *directory.User, password string) (string, error) {
	if password == "" || login == "" {
		return "", directory.ErrAuthFailed
	}
	// A lookup and a bind, each possibly failing over through every
	// server.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Duration(len(c.cfg.Servers))*(c.cfg.DialTimeout+c.cfg.Timeout))
	defer cancel()
	if user != nil && user.ExternalDN != "" {
		if err := c.bindAs(ctx, user.ExternalDN, password); err != nil {
			return "", err
		}
		return user.ExternalID, nil
	}
	conn, _, err := c.dial.connect(ctx, c.cfg.BindDN, c.cfg.BindPassword)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := watch(ctx, conn)
	defer stop()
	attrs := []string{c.cfg.LoginAttribute}
	if c.cfg.Mapping.Mail != "" && c.cfg.Mapping.Mail != c.cfg.LoginAttribute {
		attrs = append(attrs, c.cfg.Mapping.Mail)
	}
	filter := "(&" + c.cfg.UserFilter + "(|"
	for _, a := range attrs {
		filter += "(" + a + "=" + goldap.EscapeFilter(login) + ")"
	}
	filter += "))"
	req := goldap.NewSearchRequest(c.cfg.UserBase, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, int(c.cfg.Timeout.Seconds()), false,
		filter, c.cfg.Mapping.userAttributes(), nil)
	res, err := conn.Search(req)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return "", fmt.Errorf("ldap: looking up login: %w", err)
	}
	if res == nil || len(res.Entries) != 1 {
		return "", directory.ErrAuthFailed // unknown, or ambiguous
	}
	e, err := c.cfg.Mapping.MapUser(res.Entries[0])
	if err != nil || excluded(c.cfg.ExcludeUsers, e) {
		return "", directory.ErrAuthFailed
	}
	if err := c.bindAs(ctx, res.Entries[0].DN, password); err != nil {
		return "", err
	}
	return e.ID, nil
}

// bindAs binds as dn, trying the servers in failover order until one
// answers.
func (c *Connector) bindAs(ctx context.Context, dn, password string) error {
	_, err := c.dial.try(ctx, func(conn *goldap.Conn) error { return conn.Bind(dn, password) }, true)
	var le *goldap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le) && (le.ResultCode == goldap.LDAPResultInvalidCredentials ||
		le.ResultCode == goldap.LDAPResultInvalidDNSyntax || le.ResultCode == goldap.LDAPResultUnwillingToPerform ||
		le.ResultCode == goldap.LDAPResultInappropriateAuthentication):
		return directory.ErrAuthFailed
	}
	return fmt.Errorf("ldap: bind: %w", err)
}
