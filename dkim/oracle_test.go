package dkim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/mailyard/mailyard/internal/ctxio"
)

// msgauthSignStream is the signer this package used before it signed
// with its own canonicaliser: the same header read and h= list as
// [Sign], the body streamed into one go-msgauth signer per key. It stays
// as the independent oracle of the differential tests and as the
// baseline of BenchmarkSign (impl=go-msgauth).
func msgauthSignStream(ctx context.Context, keys []Key, r io.Reader, opts SignOptions) (string, error) {
	maxHeader := opts.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = defaultMaxHeaderBytes
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	br := bufio.NewReaderSize(ctxio.NewReader(ctx, r), 4<<10)
	header, err := readHeader(br, maxHeader)
	if err != nil {
		return "", err
	}
	hkeys, err := headerKeys(splitFields(header), opts)
	if err != nil {
		return "", err
	}
	signers := make([]*msgdkim.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	defer func() {
		for _, s := range signers {
			s.Close()
		}
	}()
	for _, k := range keys {
		so := &msgdkim.SignOptions{
			Domain: k.Domain, Selector: k.Selector, Signer: k.Signer(),
			HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
			HeaderKeys:             hkeys,
		}
		if opts.Expiration > 0 {
			so.Expiration = now().Add(opts.Expiration)
		}
		s, err := msgdkim.NewSigner(so)
		if err != nil {
			return "", err
		}
		signers = append(signers, s)
		writers = append(writers, s)
	}
	w := io.MultiWriter(writers...)
	if !endsWithBlankLine(header) {
		header = append(header[:len(header):len(header)], "\r\n"...)
	}
	if _, err := w.Write(header); err != nil {
		return "", err
	}
	if _, err := br.WriteTo(w); err != nil {
		return "", err
	}
	var out strings.Builder
	for i, s := range signers {
		if err := s.Close(); err != nil {
			return "", fmt.Errorf("sign with %s: %w", keys[i], err)
		}
		out.WriteString(s.Signature())
	}
	return out.String(), nil
}
