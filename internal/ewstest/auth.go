package ewstest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //lint:ignore SA1019 NTLM's NT hash is MD4 ([MS-NLMP] §3.3.2)
)

// authenticate checks the request's Authorization (Basic, RFC 7617, or
// NTLM over HTTP, [MS-NTHT] with [MS-NLMP] messages) and returns the
// account, or answers 401 itself and returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *account {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if ok && !s.opts.NoBasic {
			s.mu.Lock()
			a := s.lookupLogin(user)
			s.mu.Unlock()
			if a != nil && subtle.ConstantTimeCompare([]byte(a.Password), []byte(pass)) == 1 {
				return a
			}
		}
	case "ntlm", "negotiate":
		msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err == nil && !s.opts.NoNTLM && len(msg) >= 12 && string(msg[:8]) == "NTLMSSP\x00" {
			switch binary.LittleEndian.Uint32(msg[8:]) {
			case 1:
				challenge := s.ntlmChallenge(r.RemoteAddr, msg)
				w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(challenge))
				http.Error(w, "NTLM challenge", http.StatusUnauthorized)
				return nil
			case 3:
				if a, err := s.ntlmVerify(r.RemoteAddr, msg); err == nil {
					return a
				}
			}
		}
	}
	if !s.opts.NoNTLM {
		w.Header().Add("WWW-Authenticate", "NTLM")
	}
	if !s.opts.NoBasic {
		w.Header().Add("WWW-Authenticate", `Basic realm="ewstest"`)
	}
	http.Error(w, "authentication required", http.StatusUnauthorized)
	return nil
}

// lookupLogin finds an account by login name, SMTP address or
// DOMAIN\name.
func (s *Server) lookupLogin(name string) *account {
	name = strings.ToLower(name)
	if a := s.users[name]; a != nil {
		return a
	}
	if _, after, ok := strings.Cut(name, `\`); ok {
		return s.users[after]
	}
	return nil
}

// ntlmChallenges holds the server challenges sent, by connection (the
// client's address: NTLM authenticates a connection, [MS-NTHT]).
type ntlmChallenges struct {
	byConn map[string]ntlmPending
}

type ntlmPending struct {
	challenge [8]byte
	flags     uint32
	at        time.Time
}

const (
	maxPendingNTLM = 10000
	ntlmTTL        = 2 * time.Minute
)

// NTLM negotiate flags ([MS-NLMP] §2.2.2.5).
const (
	flagUnicode          = 0x00000001
	flagRequestTarget    = 0x00000004
	flagSign             = 0x00000010
	flagSeal             = 0x00000020
	flagNTLM             = 0x00000200
	flagAlwaysSign       = 0x00008000
	flagTargetTypeDomain = 0x00010000
	flagExtendedSecurity = 0x00080000
	flagTargetInfo       = 0x00800000
	flagVersion          = 0x02000000
	flag128              = 0x20000000
	flagKeyExch          = 0x40000000
	flag56               = 0x80000000
)

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// ntlmChallenge answers a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE
// ([MS-NLMP] §2.2.1.2, §3.2.5.1.1).
func (s *Server) ntlmChallenge(conn string, negotiate []byte) []byte {
	var clientFlags uint32
	if len(negotiate) >= 16 {
		clientFlags = binary.LittleEndian.Uint32(negotiate[12:])
	}
	flags := uint32(flagUnicode|flagRequestTarget|flagNTLM|flagAlwaysSign|flagTargetTypeDomain|
		flagExtendedSecurity|flagTargetInfo|flagVersion|flag128|flag56) |
		clientFlags&(flagSign|flagSeal|flagKeyExch)
	var p ntlmPending
	_, _ = rand.Read(p.challenge[:])
	p.flags = flags
	p.at = s.opts.Now()

	domain := utf16le(s.opts.NTLMDomain)
	host := utf16le("EWSTEST")
	dns := utf16le(strings.ToLower(s.opts.NTLMDomain) + ".test")
	var info []byte
	av := func(id uint16, v []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(v)))
		info = append(info, v...)
	}
	av(2, domain)
	av(1, host)
	av(4, dns)
	av(3, append(append(host, utf16le(".")...), dns...))
	av(0, nil)

	const header = 56
	m := make([]byte, header, header+len(domain)+len(info))
	copy(m, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(m[8:], 2)
	putField(m[12:], len(domain), header)
	binary.LittleEndian.PutUint32(m[20:], flags)
	copy(m[24:], p.challenge[:])
	putField(m[40:], len(info), header+len(domain))
	copy(m[48:], []byte{10, 0, 0x63, 0x45, 0, 0, 0, 15}) // Windows 10.0.17763, NTLMSSP revision 15
	m = append(append(m, domain...), info...)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if len(s.ntlm.byConn) >= maxPendingNTLM {
		for k, v := range s.ntlm.byConn {
			if now.Sub(v.at) > ntlmTTL {
				delete(s.ntlm.byConn, k)
			}
		}
		if len(s.ntlm.byConn) >= maxPendingNTLM {
			clear(s.ntlm.byConn)
		}
	}
	s.ntlm.byConn[conn] = p
	return m
}

func putField(b []byte, n, off int) {
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(off))
}

var errNTLM = errors.New("ewstest: NTLM authentication failed")

// field returns the payload an AUTHENTICATE_MESSAGE field points at.
func field(m []byte, at int) ([]byte, error) {
	if len(m) < at+8 {
		return nil, errNTLM
	}
	n := int(binary.LittleEndian.Uint16(m[at:]))
	off := int(binary.LittleEndian.Uint32(m[at+4:]))
	if off < 0 || off+n > len(m) {
		return nil, errNTLM
	}
	return m[off : off+n], nil
}

func ntlmString(b []byte, unicode bool) string {
	if !unicode {
		return string(b)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// ntlmVerify checks an AUTHENTICATE_MESSAGE ([MS-NLMP] §2.2.1.3) against
// the challenge sent on this connection: NTLMv2 only (§3.3.2), the
// NTProofStr recomputed from the account's password.
func (s *Server) ntlmVerify(conn string, m []byte) (*account, error) {
	s.mu.Lock()
	p, ok := s.ntlm.byConn[conn]
	delete(s.ntlm.byConn, conn)
	s.mu.Unlock()
	if !ok || s.opts.Now().Sub(p.at) > ntlmTTL || len(m) < 64 {
		return nil, errNTLM
	}
	unicode := binary.LittleEndian.Uint32(m[60:])&flagUnicode != 0
	nt, err1 := field(m, 20)
	dom, err2 := field(m, 28)
	usr, err3 := field(m, 36)
	if err := errors.Join(err1, err2, err3); err != nil || len(nt) <= 24 {
		return nil, errNTLM // NTLMv1 responses are exactly 24 bytes
	}
	user, domain := ntlmString(usr, unicode), ntlmString(dom, unicode)
	s.mu.Lock()
	a := s.lookupLogin(user)
	if a == nil && domain != "" {
		a = s.lookupLogin(user + "@" + domain)
	}
	s.mu.Unlock()
	if a == nil {
		return nil, errNTLM
	}
	h := md4.New()
	h.Write(utf16le(a.Password))
	mac := hmac.New(md5.New, h.Sum(nil))
	mac.Write(utf16le(strings.ToUpper(user) + domain))
	ntowf := mac.Sum(nil)
	mac = hmac.New(md5.New, ntowf)
	mac.Write(p.challenge[:])
	mac.Write(nt[16:])
	if !hmac.Equal(mac.Sum(nil), nt[:16]) {
		return nil, errNTLM
	}
	return a, nil
}
