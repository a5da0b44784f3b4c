package dkim

import "fmt"

// Disposition is what an administrator wants done with a message whose
// DMARC policy asks for reject or quarantine.
type Disposition int

// Dispositions. The zero value follows the domain owner's policy.
const (
	// FollowPolicy: reject for p=reject, junk for p=quarantine.
	FollowPolicy Disposition = iota
	// MarkOnly: accept and deliver normally; the Authentication-Results
	// field still says dmarc=fail.
	MarkOnly
	// DeliverToJunk: accept and file in the recipient's Junk mailbox.
	DeliverToJunk
	// RejectMessage: refuse at DATA with 550 5.7.1.
	RejectMessage
)

// ActionPolicy maps DMARC outcomes to dispositions. The zero value
// follows what the domain owner published (RFC 7489 §6.3 p=).
type ActionPolicy struct {
	// OnReject applies when the applied DMARC policy is reject.
	OnReject Disposition
	// OnQuarantine applies when the applied DMARC policy is quarantine.
	OnQuarantine Disposition
}

// Verdict is the outcome of [Action].
type Verdict int

// Verdicts.
const (
	// Accept: deliver normally.
	Accept Verdict = iota
	// Junk: deliver to the Junk mailbox.
	Junk
	// Reject: refuse the message with Decision.Code.
	Reject
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Junk:
		return "junk"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Decision says what to do with a message, and why, in terms an SMTP
// reply can carry.
type Decision struct {
	Verdict Verdict
	// Code and Enhanced are the SMTP reply for Reject (RFC 5321 §4.2,
	// RFC 3463), e.g. 550 and "5.7.1".
	Code     int
	Enhanced string
	// Check names the rule that decided ("dmarc"); empty for Accept
	// without a finding.
	Check string
	// Reason is safe to show to the client: it names the policy and the
	// domain, nothing internal.
	Reason string
}

// Action decides what to do with a verified message under policy. It is
// a pure function of its arguments: only a DMARC failure with an applied
// (post-pct) policy of reject or quarantine changes the verdict; DNS
// trouble (temperror) and absent records never do (RFC 7489 §6.6.2
// leaves temporary failures to local policy; we deliver and mark).
func Action(res Result, policy ActionPolicy) Decision {
	d := res.DMARC
	if d.Status != StatusFail {
		return Decision{Verdict: Accept}
	}
	var disp Disposition
	switch d.Applied {
	case PolicyReject:
		disp = policy.OnReject
		if disp == FollowPolicy {
			disp = RejectMessage
		}
	case PolicyQuarantine:
		disp = policy.OnQuarantine
		if disp == FollowPolicy {
			disp = DeliverToJunk
		}
	default:
		return Decision{Verdict: Accept, Check: "dmarc",
			Reason: fmt.Sprintf("DMARC failed for %s, policy %s", d.FromDomain, d.Applied)}
	}
	reason := fmt.Sprintf("DMARC policy of %s is %s and the message is not authenticated for it (RFC 7489)", d.FromDomain, d.Applied)
	switch disp {
	case RejectMessage:
		return Decision{Verdict: Reject, Code: 550, Enhanced: "5.7.1", Check: "dmarc", Reason: reason}
	case DeliverToJunk:
		return Decision{Verdict: Junk, Check: "dmarc", Reason: reason}
	default:
		return Decision{Verdict: Accept, Check: "dmarc", Reason: reason}
	}
}
