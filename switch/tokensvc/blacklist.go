package tokensvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/replica"
)

// The transit blacklist the switch publishes to the gates (docs/transit.md,
// "The lost phone"): the transit cards of every device turned off (lost),
// and the cards the operators' clearing found cloned. A gate cannot ask the
// network, so it loads the list as a versioned file: every change makes a
// new version, and the file is the whole list.
//
//	t/b/<card> -> blacklistRecord
//	t/v        -> blacklistVersion

const (
	prefixTransitBlack = "t/b/"
	keyTransitVersion  = "t/v"
)

type blacklistRecord struct {
	Reason transit.BlacklistReason `json:"reason"`
	Since  time.Time               `json:"since"`
	Login  string                  `json:"login,omitempty"`  // lost: the account whose device it was
	Device string                  `json:"device,omitempty"` // lost: the device turned off
}

type blacklistVersion struct {
	Version uint32    `json:"version"`
	Changed time.Time `json:"changed"`
}

// transitCardsOf returns the transit cards opened on a device.
func (s *Service) transitCardsOf(login, deviceID string) ([]string, error) {
	t := s.topups.Load()
	if t == nil {
		return nil, nil
	}
	return (*t).Cards(login, deviceID)
}

// blacklistDevice adds the device's transit cards to the blacklist, as
// lost, in batch b; the caller holds s.mu. It returns how many it added.
func (s *Service) blacklistDevice(b *batch, login, deviceID string, now time.Time) (int, error) {
	cards, err := s.transitCardsOf(login, deviceID)
	if err != nil {
		return 0, err
	}
	added := 0
	for _, c := range cards {
		var rec blacklistRecord
		found, err := s.st.get(prefixTransitBlack+c, &rec)
		if err != nil {
			return 0, err
		}
		if found {
			continue
		}
		b.put(prefixTransitBlack+c, blacklistRecord{Reason: transit.ReasonLost, Since: now, Login: login, Device: deviceID})
		added++
	}
	if added > 0 {
		return added, s.bumpBlacklist(b, now)
	}
	return 0, nil
}

// unblacklistDevice takes the device's cards that are on the list as lost
// off it (the phone was found and turned on again); cloned cards stay.
func (s *Service) unblacklistDevice(b *batch, login, deviceID string, now time.Time) (int, error) {
	cards, err := s.transitCardsOf(login, deviceID)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, c := range cards {
		var rec blacklistRecord
		found, err := s.st.get(prefixTransitBlack+c, &rec)
		if err != nil {
			return 0, err
		}
		if found && rec.Reason == transit.ReasonLost && rec.Device == deviceID {
			b.del(prefixTransitBlack + c)
			removed++
		}
	}
	if removed > 0 {
		return removed, s.bumpBlacklist(b, now)
	}
	return 0, nil
}

func (s *Service) bumpBlacklist(b *batch, now time.Time) error {
	var v blacklistVersion
	if _, err := s.st.get(keyTransitVersion, &v); err != nil {
		return err
	}
	if v.Version == 0 {
		v.Version = 1 // the empty list nobody changed is published as version 1
	}
	v.Version++
	v.Changed = now.UTC().Truncate(time.Second)
	b.put(keyTransitVersion, v)
	return nil
}

// BlacklistCards adds cards to the blacklist with reason (the operators'
// clearing reports cloned purses): a new version when any was not listed.
func (s *Service) BlacklistCards(cards []string, reason transit.BlacklistReason) (added int, err error) {
	for try := range conflictTriesMax {
		// In a cluster, a write another node overtook runs again.
		if added, err = s.blacklistCards(cards, reason); !errors.Is(err, replica.ErrConflict) {
			break
		}
		replica.Backoff(try)
	}
	return added, err
}

func (s *Service) blacklistCards(cards []string, reason transit.BlacklistReason) (added int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	b := s.st.newBatch()
	for _, c := range cards {
		if !transit.ValidCard(c) {
			b.b.Close()
			return 0, fmt.Errorf("blacklist: card %q is not 8 to 19 digits", c)
		}
		var rec blacklistRecord
		found, err := s.st.get(prefixTransitBlack+c, &rec)
		if err != nil {
			b.b.Close()
			return 0, err
		}
		if found && rec.Reason == reason {
			continue
		}
		b.put(prefixTransitBlack+c, blacklistRecord{Reason: reason, Since: now})
		added++
	}
	if added > 0 {
		if err := s.bumpBlacklist(b, now); err != nil {
			b.b.Close()
			return 0, err
		}
	}
	return added, b.commit()
}

// TransitBlacklist renders the current blacklist as the versioned file the
// gates load (settlement/transit.WriteBlacklist), for business day day.
// Version 0 (nothing was ever listed) is published as version 1, empty.
func (s *Service) TransitBlacklist(day string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v blacklistVersion
	if _, err := s.st.get(keyTransitVersion, &v); err != nil {
		return nil, err
	}
	if v.Version == 0 {
		v.Version, v.Changed = 1, time.Unix(0, 0).UTC()
	}
	var entries []transit.BlacklistEntry
	it, err := s.st.iterUnder(prefixTransitBlack)
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		var rec blacklistRecord
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			closeIter(it)
			return nil, fmt.Errorf("%w at t/b: %v", errCorrupt, err)
		}
		entries = append(entries, transit.BlacklistEntry{Card: string(it.Key()[len(prefixTransitBlack):]), Reason: rec.Reason})
	}
	if err := closeIter(it); err != nil {
		return nil, err
	}
	return transit.WriteBlacklist(transit.BlacklistHeader{Version: v.Version, Issued: v.Changed, Day: day}, entries)
}
