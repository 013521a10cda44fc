package tokensvc

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/topup"
)

// TopUps is the switch's top-up service (switch/topup), which runs the two
// legs of an opening or a load for a phone (docs/api.md, "Transit cards").
type TopUps interface {
	Prepare(p topup.Prepare) (topup.Record, error)
	Pay(ctx context.Context, p topup.Pay) (topup.Record, error)
	Get(id string) (topup.Record, error)
	PurseKey(r topup.Record) (string, error)
	// Cards are the transit cards opened on a device (the lost-phone
	// blacklist, blacklist.go).
	Cards(login, deviceID string) ([]string, error)
	// Acknowledge erases an opening's purse key once the phone holds it.
	Acknowledge(id, login, deviceID string) (topup.Record, error)
}

// SetTopUps gives the service its top-ups, which the node builds after the
// pipeline. Without them the transit endpoints answer 503.
func (s *Service) SetTopUps(t TopUps) { s.topups.Store(&t) }

// topUpPayTimeout bounds one pay call: the bank leg, the load and a
// reversal, each bounded on its own.
const topUpPayTimeout = 30 * time.Second

var topUpPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

type topUpRequest struct {
	Operator string `json:"operator"` // issuer ID, e.g. BJT, of a card to open
	Card     string `json:"card"`     // the card to load; "" to open a new card
	Token    string `json:"token"`    // the bank token that pays
	Amount   int64  `json:"amount"`   // fen
}

type purseRequest struct {
	Card     string `json:"card"`
	Amount   int64  `json:"amount"`
	Balance  int64  `json:"balance"`
	Counter  uint16 `json:"counter"`
	Sequence uint32 `json:"sequence"`
	MAC      string `json:"mac"` // MAC1, 16 hex
}

type payRequest struct {
	BankLeg string        `json:"bank_leg"` // hex of the packed 0200
	Purse   *purseRequest `json:"purse,omitempty"`
}

// topUpView is a top-up as the phone sees it.
type topUpView struct {
	ID       string      `json:"id"`
	State    topup.State `json:"state"`
	RC       string      `json:"rc,omitempty"`
	Operator string      `json:"operator"`
	Code     string      `json:"operator_code"`
	Open     bool        `json:"open"`
	Card     string      `json:"card"`
	Amount   int64       `json:"amount"`
	BankLeg  bankLegView `json:"bank_leg"`
	Grant    *grantView  `json:"grant,omitempty"`
	PurseKey string      `json:"purse_key,omitempty"`
}

// bankLegView is what the phone builds the bank leg with: the acceptor,
// STAN and time the switch fixed.
type bankLegView struct {
	TerminalID       string `json:"terminal_id"`
	MerchantID       string `json:"merchant_id"`
	Acquirer         string `json:"acquirer"`
	MCC              string `json:"mcc"`
	STAN             string `json:"stan"`
	TransmissionTime string `json:"transmission_time"` // DE7, MMDDhhmmss UTC
	Time             string `json:"time"`              // the same instant, RFC 3339
}

type grantView struct {
	BalanceAfter int64  `json:"balance_after"`
	MAC          string `json:"mac"` // MAC2
	Sequence     uint32 `json:"sequence"`
}

func (s *Service) topUpService() (TopUps, *apiError) {
	t := s.topups.Load()
	if t == nil {
		return nil, newError(http.StatusServiceUnavailable, "no_topups", "transit top-ups are not available on this switch")
	}
	return *t, nil
}

func (s *Service) topUpView(r topup.Record) (topUpView, *apiError) {
	v := topUpView{ID: r.ID, State: r.State, RC: r.RC, Operator: r.Operator, Code: r.Code, Open: r.Open, Card: r.Card, Amount: r.Amount}
	v.BankLeg = bankLegView{TerminalID: r.Terminal, STAN: r.Bank.STAN, TransmissionTime: r.Bank.TransmissionTime,
		Time: r.Created.Format(time.RFC3339)}
	v.BankLeg.MerchantID, v.BankLeg.Acquirer, v.BankLeg.MCC = r.Merchant, r.Acquirer, topup.MCC
	if r.State == topup.Loaded {
		v.Grant = &grantView{BalanceAfter: r.BalanceAfter, MAC: r.GrantMAC, Sequence: r.Sequence}
		t, _ := s.topUpService()
		key, err := t.PurseKey(r)
		if err != nil {
			return v, s.internalErr("purse key", err)
		}
		v.PurseKey = key
	}
	return v, nil
}

// topUpOf is the service and the top-up ID of a request naming one.
func (s *Service) topUpOf(r *http.Request) (TopUps, string, *apiError) {
	t, e := s.topUpService()
	if e != nil {
		return nil, "", e
	}
	id := r.PathValue("id")
	if !topUpPattern.MatchString(id) {
		return nil, "", errNotFound("top-up")
	}
	return t, id, nil
}

// topUpFailure is the answer to an error of the top-up service.
func (s *Service) topUpFailure(w http.ResponseWriter, err error, operator string) {
	switch {
	case errors.Is(err, topup.ErrNotFound):
		writeError(w, errNotFound("top-up"))
	case errors.Is(err, topup.ErrBusy):
		writeError(w, newError(http.StatusConflict, "busy", "this top-up is being paid; ask for it with GET"))
	case errors.Is(err, topup.ErrMismatch):
		writeError(w, errBadRequest("bad_bank_leg", err.Error()))
	case errors.Is(err, topup.ErrOperator):
		writeError(w, errBadRequest("bad_operator", "no transit operator "+operator))
	case errors.Is(err, topup.ErrInvalid):
		writeError(w, errBadRequest("bad_topup", err.Error()))
	default:
		s.internal(w, "top-up", err)
	}
}

// writeTopUp answers with the top-up as the phone sees it.
func (s *Service) writeTopUp(w http.ResponseWriter, status int, rec topup.Record) {
	v, e := s.topUpView(rec)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, status, v)
}

// handleTopUp prepares an opening (no card) or a load of a transit card,
// paid by one of the device's bank tokens.
func (s *Service) handleTopUp(w http.ResponseWriter, r *http.Request, login string) {
	t, e := s.topUpService()
	if e != nil {
		writeError(w, e)
		return
	}
	deviceID := r.PathValue("device")
	var req topUpRequest
	if e := decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.Card != "" && !transit.ValidCard(req.Card) {
		writeError(w, errBadRequest("bad_card", "card must be the transit card's 8 to 19 digits, or empty to open one"))
		return
	}
	if req.Amount <= 0 || req.Amount > transit.AmountMax {
		writeError(w, errBadRequest("bad_amount", "amount must be 1 to 100000000 fen"))
		return
	}
	s.mu.Lock()
	d, e := s.ownDevice(login, deviceID)
	if e == nil && d.Off {
		e = newError(http.StatusConflict, "device_off", "the device is turned off")
	}
	if e == nil {
		_, e = s.ownToken(login, req.Token, deviceID)
	}
	s.mu.Unlock()
	if e != nil {
		writeError(w, e)
		return
	}
	rec, err := t.Prepare(topup.Prepare{Login: login, Device: deviceID, Operator: req.Operator, Card: req.Card,
		Token: req.Token, Amount: req.Amount})
	if err != nil {
		s.topUpFailure(w, err, req.Operator)
		return
	}
	s.writeTopUp(w, http.StatusCreated, rec)
}

// handleTopUpPay runs the prepared top-up's two legs.
func (s *Service) handleTopUpPay(w http.ResponseWriter, r *http.Request, login string) {
	t, id, e := s.topUpOf(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req payRequest
	if e := decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	leg, err := hex.DecodeString(req.BankLeg)
	if err != nil || len(leg) == 0 {
		writeError(w, errBadRequest("bad_bank_leg", "bank_leg must be the packed 0200 in hex"))
		return
	}
	p := topup.Pay{ID: id, Login: login, Device: r.PathValue("device"), BankLeg: leg}
	if pr := req.Purse; pr != nil {
		mac, err := hex.DecodeString(pr.MAC)
		if err != nil || len(mac) != transit.LoadMACBytes {
			writeError(w, errBadRequest("bad_purse", "purse.mac must be 16 hex digits"))
			return
		}
		p.Purse = &transit.LoadRequest{Card: pr.Card, Amount: pr.Amount, Balance: pr.Balance, Counter: pr.Counter, Sequence: pr.Sequence}
		copy(p.Purse.MAC[:], mac)
	}
	ctx, cancel := context.WithTimeout(r.Context(), topUpPayTimeout)
	defer cancel()
	rec, err := t.Pay(ctx, p)
	if err != nil {
		s.topUpFailure(w, err, "")
		return
	}
	s.writeTopUp(w, http.StatusOK, rec)
}

// handleTopUpGet returns a top-up of the caller's device: after a lost
// answer, the phone asks for the outcome (and the grant) here.
func (s *Service) handleTopUpGet(w http.ResponseWriter, r *http.Request, login string) {
	t, id, e := s.topUpOf(r)
	if e != nil {
		writeError(w, e)
		return
	}
	rec, err := t.Get(id)
	if err == nil && (rec.Login != login || rec.Device != r.PathValue("device")) {
		err = topup.ErrNotFound // another account's top-up is not there for this one
	}
	if err != nil {
		s.topUpFailure(w, err, "")
		return
	}
	s.writeTopUp(w, http.StatusOK, rec)
}

// handleTopUpAck is the phone's receipt of an opening's purse key: the
// switch erases its sealed copy, so the key went to the phone once.
func (s *Service) handleTopUpAck(w http.ResponseWriter, r *http.Request, login string) {
	t, id, e := s.topUpOf(r)
	if e != nil {
		writeError(w, e)
		return
	}
	rec, err := t.Acknowledge(id, login, r.PathValue("device"))
	if err != nil {
		s.topUpFailure(w, err, "")
		return
	}
	s.writeTopUp(w, http.StatusOK, rec)
}
