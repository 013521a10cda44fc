package tokensvc

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Audit page bounds for GET /v1/audit.
const (
	auditPageDefault = 100
	auditPageMax     = 500
)

// AuditRecord is one entry of the audit trail: who did what, when, to
// which device, token and card. Tokens and cards are masked (first 6, last
// 4 digits); no code, password, session or key ever appears.
type AuditRecord struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`   // the logged-in account, "system" for recovery, "unknown" for a failed login at an unknown login
	Remote  string    `json:"remote"`  // the client's address, "" for system actions
	Account string    `json:"account"` // whose trail it is in
	Action  string    `json:"action"`
	Device  string    `json:"device,omitempty"`
	Token   string    `json:"token,omitempty"`
	Card    string    `json:"card,omitempty"`
	Binding string    `json:"binding,omitempty"`
	// Outcome is "ok", or what went wrong ("wrong_code", "declined 05", ...).
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Audit actions.
const (
	actAccountCreate = "account.create"
	actSessionCreate = "session.create"
	actSessionDelete = "session.delete"
	actLoginFailed   = "login.failed"
	actCardVerify    = "card.verify"
	actBindingCreate = "binding.create"
	actBindingCode   = "binding.code"
	actBindingExpire = "binding.expire"
	actBindingFail   = "binding.fail"
	actTokenCreate   = "token.create"
	actTokenRollback = "token.rollback"
	actTokenSuspend  = "token.suspend"
	actTokenResume   = "token.resume"
	actTokenDelete   = "token.delete"
	actDeviceSuspend = "device.suspend"
	actDeviceResume  = "device.resume"
	outcomeOK        = "ok"
	actorSystem      = "system"
	// actorUnknown is the actor of a failed login at an unknown login.
	actorUnknown = "unknown"
)

// actCardBoundElsewhere is in the trail of an account whose card another
// account is adding (the cardholder's SMS warned them too).
const actCardBoundElsewhere = "card.bound_elsewhere"

// audit adds rec to b under the next sequence number, in the global trail
// and in the account's (a record of no account, a failed login at an
// unknown login, is in the global trail only). The caller holds s.mu,
// which orders the numbers, and commits b; a failed commit leaves a gap,
// which is harmless.
func (s *Service) audit(b *batch, rec AuditRecord) {
	if s.st.log != nil {
		// Other nodes number their records in the same trail: go on from
		// the last number in the store, which holds every batch up to the
		// write's base (a batch after it fails the commit anyway), or from
		// this node's last, which may be in this very batch.
		last := s.auditSeq
		if err := s.loadAuditSeq(); err != nil && b.err == nil {
			b.err = err
		}
		s.auditSeq = max(s.auditSeq, last)
	}
	s.auditSeq++
	rec.Seq = s.auditSeq
	rec.Time = s.now().UTC()
	b.put(auditKey(rec.Seq), rec)
	if rec.Account != "" {
		b.setEmpty(accountAuditKey(rec.Account, rec.Seq))
	}
}

// loadAuditSeq finds the last sequence number used.
func (s *Service) loadAuditSeq() error {
	last, err := s.st.lastKeyUnder(prefixAudit)
	if err != nil || last == "" {
		return err
	}
	seq, err := parseSeq(last[len(prefixAudit):])
	if err != nil {
		return fmt.Errorf("%w: audit key: %v", errCorrupt, err)
	}
	s.auditSeq = seq
	return nil
}

func parseSeq(text string) (uint64, error) {
	b, err := hex.DecodeString(text)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("sequence %q is not 16 hex digits", text)
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n, nil
}

// handleAudit is GET /v1/audit[?limit=N][&before=SEQ]: the account's trail,
// newest first.
func (s *Service) handleAudit(w http.ResponseWriter, r *http.Request, login string) {
	limit := auditPageDefault
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditPageMax {
			writeError(w, errBadRequest("bad_limit", fmt.Sprintf("limit must be 1..%d", auditPageMax)))
			return
		}
		limit = n
	}
	before := uint64(1<<64 - 1)
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, errBadRequest("bad_before", "before must be a sequence number"))
			return
		}
		before = n
	}
	recs, err := s.auditPage(login, before, limit)
	if err != nil {
		s.internal(w, "audit read", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": login, "records": recs})
}

// auditPage reads up to limit records of login's trail with Seq < before,
// newest first.
func (s *Service) auditPage(login string, before uint64, limit int) ([]AuditRecord, error) {
	prefix := prefixAccountAudit + login + "/"
	it, err := s.st.iterUnder(prefix)
	if err != nil {
		return nil, err
	}
	recs := []AuditRecord{}
	var seqs []uint64
	ok := it.SeekLT([]byte(prefix + seqText(before)))
	for ; ok && len(seqs) < limit; ok = it.Prev() {
		seq, err := parseSeq(strings.TrimPrefix(string(it.Key()), prefix))
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("%w: audit index: %v", errCorrupt, err)
		}
		seqs = append(seqs, seq)
	}
	if err := closeIter(it); err != nil {
		return nil, err
	}
	for _, seq := range seqs {
		var rec AuditRecord
		found, err := s.st.get(auditKey(seq), &rec)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: audit index names %d, which has no record", errCorrupt, seq)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}
