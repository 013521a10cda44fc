package world

import (
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// TestBeijingFare: the bands of the Beijing subway fare, at and around
// each bound.
func TestBeijingFare(t *testing.T) {
	for _, c := range []struct {
		metres int64
		fen    int64
	}{
		{0, 3_00}, {6_000, 3_00}, {6_001, 4_00}, {12_000, 4_00}, {12_001, 5_00},
		{22_000, 5_00}, {22_001, 6_00}, {32_000, 6_00}, {32_001, 7_00}, {52_000, 7_00},
		{52_001, 8_00}, {72_000, 8_00}, {72_001, 9_00},
	} {
		if got := BeijingFare(c.metres); got != c.fen {
			t.Errorf("%d m: %d fen, want %d", c.metres, got, c.fen)
		}
	}
}

// TestCitiesMatchTheMembers: each city is a transit member of
// configs/issuers.yaml with the same operator code and city, every
// transit member has a city, gate IDs are well formed, carry their
// operator and are unique, and station names are unique.
func TestCitiesMatchTheMembers(t *testing.T) {
	members, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	transitMembers := map[string]issuers.Issuer{}
	for _, m := range members {
		if m.Kind == issuers.KindTransit {
			transitMembers[m.ID] = m
		}
	}
	if len(Cities()) != 6 || len(transitMembers) != 6 {
		t.Fatalf("%d cities, %d transit members", len(Cities()), len(transitMembers))
	}
	gates, names := map[string]bool{}, map[string]bool{}
	for _, c := range Cities() {
		m, ok := transitMembers[c.Issuer]
		if !ok || m.Operator != c.Operator || m.City != c.Name {
			t.Errorf("city %s (%s %s): member %+v", c.Name, c.Issuer, c.Operator, m)
		}
		if len(c.Stations) < 3 || (c.Flat <= 0) != (c.Name == "Beijing") {
			t.Errorf("city %s: %d stations, flat fare %d", c.Name, len(c.Stations), c.Flat)
		}
		for _, s := range c.Stations {
			if !transit.ValidGate(s.Gate) || transit.GateOperator(s.Gate) != c.Operator || gates[s.Gate] {
				t.Errorf("%s %s: gate %q malformed, of another operator or twice", c.Name, s.Name, s.Gate)
			}
			gates[s.Gate] = true
			if names[strings.ToLower(s.Name)] {
				t.Errorf("station name %q twice", s.Name)
			}
			names[strings.ToLower(s.Name)] = true
			if got, st, ok := CityOfGate(s.Gate); !ok || got.Name != c.Name || st != s {
				t.Errorf("gate %s found in %s", s.Gate, got.Name)
			}
			if got, st, err := StationNamed(" " + strings.ToUpper(s.Name)); err != nil || got.Name != c.Name || st != s {
				t.Errorf("station %q: %v", s.Name, err)
			}
		}
	}
	if _, _, err := StationNamed("Atlantis"); err == nil {
		t.Error("a station outside the world was found")
	}
}

// TestBeijingJourneys: a fare in every band from Pingguoyuan, the same
// both ways, the maximum fare, and gates of another city refused.
func TestBeijingJourneys(t *testing.T) {
	bj := Cities()[0]
	from, _ := stationGate(t, "Pingguoyuan")
	for _, c := range []struct {
		to  string
		fen int64
	}{{"Pingguoyuan", 3_00}, {"Babaoshan", 3_00}, {"Gongzhufen", 4_00}, {"Xidan", 5_00}, {"Guomao", 6_00}, {"Tuqiao", 7_00}} {
		to, _ := stationGate(t, c.to)
		there, ok1 := bj.Between(from, to)
		back, ok2 := bj.Between(to, from)
		if !ok1 || !ok2 || there != c.fen || back != c.fen {
			t.Errorf("Pingguoyuan-%s: %d/%d fen, want %d", c.to, there, back, c.fen)
		}
	}
	if bj.Max() != 7_00 {
		t.Errorf("maximum fare %d", bj.Max())
	}
	lujiazui, _ := stationGate(t, "Lujiazui")
	if _, ok := bj.Between(lujiazui, from); ok {
		t.Error("a Shanghai gate priced in Beijing")
	}
}

func stationGate(t *testing.T, name string) (string, City) {
	t.Helper()
	c, s, err := StationNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return s.Gate, c
}
