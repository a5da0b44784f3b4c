package imap

import (
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/internal/metric"
)

// Metrics receives a [Server]'s measurements ([Options].Metrics); nil
// records nothing. The package imports no metrics library: an embedder
// implements Metrics over the one it uses, and the reference server does
// so over Prometheus' client_golang (examples/mailserver/metrics.go).
// Several servers reporting to one registry tell themselves apart by
// labels the implementation adds (the reference server adds
// listener="imap" or listener="imaps").
//
// New calls these methods once per family, with the family's full name
// (mailyard_imap_connections_total, ...), its help text and its label
// names; an error fails New. The functions returned are then called
// concurrently for as long as the server runs, with one value per label
// name. The methods hand out plain function types so that one
// implementation also serves smtp.Metrics.
type Metrics interface {
	// Counter declares a counter family; the function returned adds
	// delta (never negative) to one series.
	Counter(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// Gauge declares a gauge family; the function returned adds delta
	// (either sign) to one series.
	Gauge(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
}

// metrics are one server's metric families. They exist (and count, into
// metric.Discard) even when no Metrics is given, so the code never checks
// for nil.
type metrics struct {
	conns    metric.Family // by result: accepted, limit
	open     metric.Family // gauge
	auth     metric.Family // by result
	appended metric.Family
	commands metric.Family // histogram by command class
}

// commandClasses are the command label values of
// mailyard_imap_command_duration_seconds: what a user waits for, grouped
// the way a mail client's actions are.
var commandClasses = []string{"auth", "select", "list", "fetch", "search", "store", "copy", "expunge", "append", "mailbox", "other"}

// commandClass groups an IMAP command name ("UID FETCH") into one of
// commandClasses.
func commandClass(name string) string {
	switch name {
	case "LOGIN", "AUTHENTICATE":
		return "auth"
	case "SELECT", "EXAMINE":
		return "select"
	case "LIST", "LSUB", "STATUS", "NAMESPACE":
		return "list"
	case "FETCH", "UID FETCH":
		return "fetch"
	case "SEARCH", "UID SEARCH", "SORT", "UID SORT", "THREAD", "UID THREAD":
		return "search"
	case "STORE", "UID STORE":
		return "store"
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		return "copy"
	case "EXPUNGE", "UID EXPUNGE", "CLOSE":
		return "expunge"
	case "APPEND":
		return "append"
	case "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE":
		return "mailbox"
	}
	return "other"
}

func newMetrics(mm Metrics) (*metrics, error) {
	m := &metrics{}
	if err := metric.Declare(mm,
		metric.Decl{To: &m.conns, Name: "mailyard_imap_connections_total",
			Help:   "Connections by result: accepted, or refused by the connection limits (limit).",
			Labels: []string{"result"}, Series: metric.OneLabel("accepted", "limit")},
		metric.Decl{To: &m.open, Name: "mailyard_imap_connections_open",
			Help: "Connections currently open.", Gauge: true},
		metric.Decl{To: &m.auth, Name: "mailyard_imap_auth_total",
			Help:   "Authentication attempts by result: success, failure, blocked, disabled, not_allowed, error.",
			Labels: []string{"result"}, Series: metric.OneLabel("success", "failure", "blocked", "disabled", "not_allowed", "error")},
		metric.Decl{To: &m.appended, Name: "mailyard_imap_messages_appended_total",
			Help: "Messages stored by APPEND and acknowledged with OK."},
		metric.Decl{To: &m.commands, Name: "mailyard_imap_command_duration_seconds",
			Help:    "Time from a command's name to its tagged response, by command class: " + strings.Join(commandClasses, ", ") + " (IDLE counts as other until DONE is read; APPEND includes the upload).",
			Labels:  []string{"command"},
			Buckets: metric.LatencyBuckets, Series: metric.OneLabel(commandClasses...)},
	); err != nil {
		return nil, fmt.Errorf("imap: metrics: %w", err)
	}
	return m, nil
}
