package acquirer

import (
	"fmt"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// Status is what the MAC check found out about a message's sender.
type Status uint8

const (
	MACMissing    Status = iota + 1 // no MAC field, or the MAC in the wrong one
	Unregistered                    // a MAC, but DE41 is no registered terminal: no key to check it
	MACBad                          // DE41 registered, the MAC does not verify under its key
	Authenticated                   // the MAC verifies under DE41's key
)

var statusNames = map[Status]string{
	MACMissing: "MAC missing", Unregistered: "terminal not registered",
	MACBad: "MAC does not verify", Authenticated: "authenticated",
}

func (s Status) String() string { return statusNames[s] }

// Identity is who sent one message, as the MAC check established it. Only
// Check makes one with Status Authenticated.
type Identity struct {
	TerminalID string   // DE41 as received (trailing padding removed)
	Status     Status   //
	Merchant   Merchant // the terminal's merchant when it is registered
	answerKey  []byte
}

// AnswerKey is the key the switch MACs its answer with: the terminal's
// own, and only when the request proved the sender holds it (nil
// otherwise: an unauthenticated sender gets no MAC it could study).
func (id Identity) AnswerKey() []byte { return id.answerKey }

// Checker checks messages against the registry and the acquirers' keys.
type Checker struct {
	reg       *Registry
	terminals map[string][]byte // terminal ID → its key, derived at start
}

// NewChecker derives every registered terminal's key. Each registered
// acquirer must have a key: a terminal no key covers could never be
// answered, so the switch refuses to start instead.
func NewChecker(reg *Registry, keys Keys) (*Checker, error) {
	for _, id := range reg.Acquirers() {
		if len(keys[id]) != mac.KeySize {
			return nil, fmt.Errorf("acquirer keys: no key for registered acquirer %s", id)
		}
	}
	c := &Checker{reg: reg, terminals: make(map[string][]byte, len(reg.terminals))}
	for tid, mid := range reg.terminals {
		c.terminals[tid] = mac.TerminalKey(keys[reg.merchants[mid].Acquirer], tid)
	}
	return c, nil
}

// Registry is the registry the checker uses.
func (c *Checker) Registry() *Registry { return c.reg }

// Check establishes who sent payload (one frame without its length
// header), whose DE41 reads terminalID. It does no I/O and keeps nothing.
func (c *Checker) Check(payload []byte, terminalID string) Identity {
	id := Identity{TerminalID: terminalID}
	if _, present, err := mac.Field(payload); err != nil || !present {
		id.Status = MACMissing
		return id
	}
	key, ok := c.terminals[terminalID]
	if !ok {
		id.Status = Unregistered
		return id
	}
	id.Merchant, _ = c.reg.Terminal(terminalID)
	if mac.Verify(key, payload) != nil {
		id.Status = MACBad
		return id
	}
	id.Status, id.answerKey = Authenticated, key
	return id
}

// Originated is the identity of registered terminal terminalID for a
// request the switch builds itself on the terminal's behalf: the bank leg
// of an in-app transit top-up (switch/topup), whose acceptor is the city
// operator's top-up terminal. No MAC travels, because no frame does: the
// switch is the sender, and it authenticated the phone by its session. The
// identity carries no answer key. false for an unregistered terminal.
func (c *Checker) Originated(terminalID string) (Identity, bool) {
	m, ok := c.reg.Terminal(terminalID)
	if !ok {
		return Identity{}, false
	}
	return Identity{TerminalID: terminalID, Status: Authenticated, Merchant: m}, true
}
