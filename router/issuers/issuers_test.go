package issuers_test

import (
	"net"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// entry is one issuers.yaml list item with the given fields changed.
func entry(id, kind, institution, address string) string {
	return "  - id: " + id + "\n    name: Test Member\n    kind: " + kind +
		"\n    institution: \"" + institution + "\"\n    address: " + address + "\n"
}

func TestParse(t *testing.T) {
	icbc := entry("ICBC", "bank", "01020000", "127.0.0.1:9601")
	for _, tc := range []struct {
		name string
		doc  string
		// wantErr is a fragment of the error; "" means the document is good.
		wantErr string
	}{
		{name: "good", doc: `issuers:
  - id: ICBC
    name: Industrial and Commercial Bank of China
    kind: bank
    institution: "01020000"
    address: 127.0.0.1:9601
  - id: SPTC
    operator: "0021"
    name: Shanghai Public Transportation Card
    kind: transit
    city: Shanghai
    institution: "31000002"
    address: "[::1]:9622"
`},
		{name: "unknown kind", doc: "issuers:\n" + icbc + entry("X", "broker", "01020001", "127.0.0.1:1"),
			wantErr: `entry 2: X: kind "broker" is not bank or transit`},
		{name: "missing kind", doc: "issuers:\n" + entry("X", "", "01020001", "127.0.0.1:1"),
			wantErr: `entry 1: X: kind "" is not bank or transit`},
		{name: "institution of 7 digits", doc: "issuers:\n" + entry("X", "bank", "0102000", "127.0.0.1:1"),
			wantErr: `entry 1: X: institution "0102000" is not 8 digits`},
		{name: "institution of 9 digits", doc: "issuers:\n" + entry("X", "bank", "010200000", "127.0.0.1:1"),
			wantErr: `institution "010200000" is not 8 digits`},
		{name: "institution with letters", doc: "issuers:\n" + entry("X", "bank", "0102000A", "127.0.0.1:1"),
			wantErr: `institution "0102000A" is not 8 digits`},
		{name: "address without port", doc: "issuers:\n" + entry("X", "bank", "01020000", "127.0.0.1"),
			wantErr: `entry 1: X: address "127.0.0.1"`},
		{name: "address empty", doc: "issuers:\n" + entry("X", "bank", "01020000", `""`),
			wantErr: `entry 1: X: address ""`},
		{name: "missing id", doc: "issuers:\n" + icbc + entry(`""`, "bank", "01020001", "127.0.0.1:1"),
			wantErr: "entry 2: no id"},
		{name: "duplicate id", doc: "issuers:\n" + icbc + entry("CCB", "bank", "01050000", "127.0.0.1:9604") +
			entry("ICBC", "bank", "01020001", "127.0.0.1:9605"),
			wantErr: "entry 3: id ICBC listed twice"},
		{name: "transit without operator", doc: "issuers:\n" + entry("X", "transit", "31000009", "127.0.0.1:1"),
			wantErr: `X: operator "": a transit member needs a 4-digit operator code`},
		{name: "bank with operator", doc: "issuers:\n" + entry("X", "bank", "01020001", "127.0.0.1:1") + "    operator: \"0010\"\n",
			wantErr: `only transit members have an operator code`},
		{name: "operator twice", doc: "issuers:\n" + entry("X", "transit", "31000009", "127.0.0.1:1") + "    operator: \"0010\"\n" +
			entry("Y", "transit", "31000008", "127.0.0.1:2") + "    operator: \"0010\"\n",
			wantErr: `Y: operator 0010 is already X's`},
		{name: "empty list", doc: "issuers: []\n", wantErr: "none listed"},
		{name: "empty document", doc: "", wantErr: "none listed"},
		{name: "invalid YAML", doc: "issuers:\n  - id: [ICBC\n", wantErr: "issuers: yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := issuers.Parse([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted %+v, want an error containing %q", list, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []issuers.Issuer{
				{ID: "ICBC", Name: "Industrial and Commercial Bank of China", Kind: issuers.KindBank,
					Institution: "01020000", Address: "127.0.0.1:9601"},
				{ID: "SPTC", Name: "Shanghai Public Transportation Card", Kind: issuers.KindTransit,
					City: "Shanghai", Operator: "0021", Institution: "31000002", Address: "[::1]:9622"},
			}
			if len(list) != len(want) {
				t.Fatalf("got %+v, want %+v", list, want)
			}
			for i := range want {
				if list[i] != want[i] {
					t.Fatalf("entry %d = %+v, want %+v", i, list[i], want[i])
				}
			}
		})
	}
}

// The shipped directory is the launch's: 20 banks and the transit operators
// of six cities, each with its own institution ID and loopback address.
func TestEmbeddedIssuers(t *testing.T) {
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatalf("configs/issuers.yaml: %v", err)
	}
	if len(list) != 26 {
		t.Fatalf("%d issuers, want 26", len(list))
	}
	kinds := map[issuers.Kind]int{}
	institutions := map[string]string{}
	addresses := map[string]string{}
	cities := map[string]string{}
	for _, is := range list {
		kinds[is.Kind]++
		if is.Name == "" {
			t.Errorf("%s has no name", is.ID)
		}
		if other, dup := institutions[is.Institution]; dup {
			t.Errorf("%s and %s share institution %s", other, is.ID, is.Institution)
		}
		institutions[is.Institution] = is.ID
		if other, dup := addresses[is.Address]; dup {
			t.Errorf("%s and %s share address %s", other, is.ID, is.Address)
		}
		addresses[is.Address] = is.ID
		host, _, _ := net.SplitHostPort(is.Address)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s: default address %s is not loopback", is.ID, is.Address)
		}
		switch is.Kind {
		case issuers.KindTransit:
			if is.City == "" {
				t.Errorf("transit operator %s has no city", is.ID)
			}
			if other, dup := cities[is.City]; dup {
				t.Errorf("%s and %s both serve %s", other, is.ID, is.City)
			}
			cities[is.City] = is.ID
		case issuers.KindBank:
			if is.City != "" {
				t.Errorf("bank %s has city %q", is.ID, is.City)
			}
		}
	}
	if kinds[issuers.KindBank] != 20 || kinds[issuers.KindTransit] != 6 {
		t.Fatalf("kinds %v, want 20 banks and 6 transit operators", kinds)
	}
}
