package ldap_test

import (
	"net"
	"testing"

	"github.com/mailyard/mailyard/internal/testpeer"
)

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func freePort(t *testing.T) int { return testpeer.FreePort(t) }
