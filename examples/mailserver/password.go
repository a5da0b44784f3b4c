package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxPasswordLine bounds a password read from standard input or a file.
const maxPasswordLine = 4096

// passwordSource is where user add and user passwd take a password from.
type passwordSource struct {
	value string // -password: visible in the shell history and ps
	file  string // -password-file
}

// passwordFlags defines -password and -password-file on fs.
func passwordFlags(fs *flag.FlagSet) *passwordSource {
	p := &passwordSource{}
	fs.StringVar(&p.value, "password", "", "the password (lands in the shell history)")
	fs.StringVar(&p.file, "password-file", "", "file whose first line is the password")
	return p
}

// readPassword returns the password from -password, -password-file, a
// prompt (twice, without echo) when standard input is a terminal, or
// else the first line of standard input.
func (a *admin) readPassword(p *passwordSource) (string, error) {
	var pw string
	switch {
	case p.value != "" && p.file != "":
		return "", fmt.Errorf("%w: give --password or --password-file, not both", errUsage)
	case p.value != "":
		pw = p.value
	case p.file != "":
		f, err := os.Open(p.file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		if pw, err = firstLine(f); err != nil {
			return "", fmt.Errorf("password file %s: %w", p.file, err)
		}
	default:
		if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return a.promptPassword(int(f.Fd()))
		}
		var err error
		if pw, err = firstLine(a.stdin); err != nil {
			return "", fmt.Errorf("password from standard input: %w", err)
		}
	}
	if pw == "" {
		return "", errors.New("empty password: give it on standard input, with --password-file FILE or --password PW")
	}
	return pw, nil
}

// firstLine reads the first line of r, without its line ending.
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLine+2), maxPasswordLine+2).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("line longer than %d bytes", maxPasswordLine)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// promptPassword asks for the password twice on the terminal fd, without
// echo, and requires both to match.
func (a *admin) promptPassword(fd int) (string, error) {
	fmt.Fprint(a.stderr, "password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(pw) == 0 {
		return "", errors.New("empty password")
	}
	fmt.Fprint(a.stderr, "again: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(pw) != string(again) {
		return "", errors.New("the passwords differ; nothing changed")
	}
	return string(pw), nil
}
