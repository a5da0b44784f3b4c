package ews

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration"
)

// Error is an error EWS reported: the ResponseCode of a response message
// or of a SOAP fault ([MS-OXWSCDATA] §2.2.5.24 ResponseCodeType).
type Error struct {
	Code    string // e.g. ErrorItemNotFound
	Message string // MessageText or faultstring
	// BackOff is the wait the server asked for (ErrorServerBusy).
	BackOff time.Duration
}

// Error implements error: "ews: CODE: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "ews: " + e.Code
	}
	return "ews: " + e.Code + ": " + e.Message
}

// codeClass sorts EWS response codes into the collectors' classes; codes
// not listed are source errors.
var codeClass = map[string]migration.ErrorClass{
	"ErrorAccessDenied":                           migration.ErrClassAuth,
	"ErrorImpersonateUserDenied":                  migration.ErrClassAuth,
	"ErrorImpersonationDenied":                    migration.ErrClassAuth,
	"ErrorImpersonationFailed":                    migration.ErrClassAuth,
	"ErrorDelegateNoUser":                         migration.ErrClassAuth,
	"ErrorInvalidLicense":                         migration.ErrClassAuth,
	"ErrorQuotaExceeded":                          migration.ErrClassQuota,
	"ErrorFolderSizeLimit":                        migration.ErrClassQuota,
	"ErrorMessageSizeExceeded":                    migration.ErrClassTooLarge,
	"ErrorExceededSizeLimit":                      migration.ErrClassTooLarge,
	"ErrorAttachmentSizeLimitExceed":              migration.ErrClassTooLarge,
	"ErrorServerBusy":                             migration.ErrClassConnection,
	"ErrorTimeoutExpired":                         migration.ErrClassConnection,
	"ErrorConnectionFailed":                       migration.ErrClassConnection,
	"ErrorMailboxMoveInProgress":                  migration.ErrClassConnection,
	"ErrorMailboxStoreUnavailable":                migration.ErrClassConnection,
	"ErrorInternalServerTransientError":           migration.ErrClassConnection,
	"ErrorInvalidServerVersion":                   migration.ErrClassConfig,
	"ErrorNonExistentMailbox":                     migration.ErrClassConfig,
	"ErrorInvalidSmtpAddress":                     migration.ErrClassConfig,
	"ErrorMailRecipientNotFound":                  migration.ErrClassConfig,
	"ErrorInvalidExchangeImpersonationHeaderData": migration.ErrClassConfig,
}

// ClassOf returns the collectors' class of an EWS response code.
func ClassOf(code string) migration.ErrorClass {
	if c, ok := codeClass[code]; ok {
		return c
	}
	return migration.ErrClassSource
}

// configErr is a configuration error (a bad endpoint, TLS range or mode).
func configErr(err error) error {
	return &migration.Error{Class: migration.ErrClassConfig, Err: err}
}

// httpError is an HTTP status that is not a SOAP answer.
type httpError struct{ status int }

func (e *httpError) Error() string {
	return fmt.Sprintf("ews: HTTP %d %s", e.status, http.StatusText(e.status))
}

// classify wraps err in a *migration.Error of its class, naming the
// mailbox as target.
func (m *Mailbox) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var me *migration.Error
	if errors.As(err, &me) {
		return err
	}
	return &migration.Error{Class: errorClass(ctx, err), Target: m.address, Err: err}
}

func errorClass(ctx context.Context, err error) migration.ErrorClass {
	var ee *Error
	var he *httpError
	var ne net.Error
	var ve *tls.CertificateVerificationError
	var re tls.RecordHeaderError
	var ae tls.AlertError
	var se *xml.SyntaxError
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return migration.ErrClassCanceled
	case errors.Is(err, errNotAllowed):
		return migration.ErrClassConfig
	case errors.Is(err, errTooLarge):
		return migration.ErrClassTooLarge
	case errors.As(err, &ee):
		return ClassOf(ee.Code)
	case errors.As(err, &he):
		switch he.status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return migration.ErrClassAuth
		case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
			return migration.ErrClassConnection
		case http.StatusNotFound:
			return migration.ErrClassConfig
		}
		return migration.ErrClassSource
	case errors.As(err, &se):
		return migration.ErrClassSource
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.As(err, &ne), errors.As(err, &ve), errors.As(err, &re), errors.As(err, &ae):
		return migration.ErrClassConnection
	}
	if strings.Contains(err.Error(), "tls: ") {
		return migration.ErrClassConnection
	}
	return migration.ErrClassSource
}

// responseMessage is the part every EWS response message shares
// ([MS-OXWSCDATA] ResponseMessageType).
type responseMessage struct {
	Class  string `xml:"ResponseClass,attr"`
	Code   string `xml:"ResponseCode"`
	Text   string `xml:"MessageText"`
	Values []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"MessageXml>Value"`
}

func (r *responseMessage) base() *responseMessage { return r }

// err is nil for a successful message, else an *Error.
func (r *responseMessage) err() error {
	if r.Class == "Success" && (r.Code == "" || r.Code == "NoError") {
		return nil
	}
	code := r.Code
	if code == "" {
		code = "Error" + r.Class
	}
	e := &Error{Code: code, Message: r.Text}
	for _, v := range r.Values {
		if v.Name == "BackOffMilliseconds" {
			if ms, err := strconv.ParseInt(strings.TrimSpace(v.Value), 10, 64); err == nil && ms >= 0 {
				e.BackOff = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return e
}

// throttled returns the busyError for a message that says ErrorServerBusy.
func throttled(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Code == "ErrorServerBusy" {
		return &busyError{wait: e.BackOff, err: err}
	}
	return err
}

// messages is implemented by responses with response messages, so that a
// throttled message is retried like a throttled call.
type messages interface{ all() []*responseMessage }

// fault is a SOAP 1.1 fault (SOAP 1.1 §4.4) with EWS's detail.
type fault struct {
	Code   string          `xml:"faultcode"`
	String string          `xml:"faultstring"`
	Detail responseMessage `xml:"detail"`
}

// decodeEnvelope reads a SOAP envelope as a stream and decodes the first
// element of its Body into resp; a fault becomes an *Error (a busyError
// for ErrorServerBusy), as does a throttled response message.
func decodeEnvelope(r io.Reader, resp any) error {
	taker, lift := resp.(mimeTaker)
	var lifter *mimeLifter
	if lift {
		lifter = newMIMELifter(r)
		r = lifter
	}
	d := xml.NewDecoder(r)
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("ews: response without a SOAP body: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !inBody {
			if vs, ok := resp.(interface{ setServerVersion(ServerVersion) }); ok && se.Name.Local == "ServerVersionInfo" {
				var v ServerVersion
				if err := d.DecodeElement(&v, &se); err != nil {
					return err
				}
				vs.setServerVersion(v)
				continue
			}
			inBody = se.Name.Local == "Body" && se.Name.Space == nsSOAP
			if !inBody && se.Name.Local != "Envelope" && se.Name.Local != "Header" {
				if err := d.Skip(); err != nil {
					return err
				}
			}
			continue
		}
		if se.Name.Local == "Fault" {
			var f fault
			if err := d.DecodeElement(&f, &se); err != nil {
				return err
			}
			f.Detail.Class, f.Detail.Text = "Error", f.String
			if f.Detail.Code == "" {
				f.Detail.Code = "ErrorSOAPFault"
				f.Detail.Text = f.Code + ": " + f.String
			}
			e := f.Detail.err()
			return throttled(e)
		}
		if err := d.DecodeElement(resp, &se); err != nil {
			return err
		}
		if lift {
			taker.takeMIME(lifter)
		}
		if ms, ok := resp.(messages); ok {
			for _, rm := range ms.all() {
				if err := throttled(rm.err()); err != nil {
					if _, busy := err.(*busyError); busy {
						return err
					}
				}
			}
		}
		return nil
	}
}
