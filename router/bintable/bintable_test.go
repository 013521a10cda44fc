package bintable_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		// wantErr is a fragment of the error; "" means the document is good.
		wantErr string
		want    []bintable.Entry
	}{
		{
			name: "good, shortest and longest prefixes",
			doc: `bins:
  - {prefix: "6222", issuer: ICBC, product: debit}
  - {prefix: "625330", issuer: ICBC, product: credit}
  - {prefix: "99100002000", issuer: SPTC, product: transit}
`,
			want: []bintable.Entry{
				{Prefix: "6222", Issuer: "ICBC", Product: bintable.ProductDebit},
				{Prefix: "625330", Issuer: "ICBC", Product: bintable.ProductCredit},
				{Prefix: "99100002000", Issuer: "SPTC", Product: bintable.ProductTransit},
			},
		},
		{
			name:    "prefix with letters",
			doc:     "bins:\n  - {prefix: \"6222\", issuer: ICBC, product: debit}\n  - {prefix: \"62A202\", issuer: ICBC, product: debit}\n",
			wantErr: `row 2: prefix "62A202" is not all digits`,
		},
		{
			name:    "prefix of 3 digits",
			doc:     "bins:\n  - {prefix: \"622\", issuer: ICBC, product: debit}\n",
			wantErr: `row 1: prefix "622" must have 4 to 11 digits`,
		},
		{
			name:    "prefix of 12 digits",
			doc:     "bins:\n  - {prefix: \"622202000000\", issuer: ICBC, product: debit}\n",
			wantErr: `row 1: prefix "622202000000" must have 4 to 11 digits`,
		},
		{
			name:    "empty prefix",
			doc:     "bins:\n  - {issuer: ICBC, product: debit}\n",
			wantErr: "row 1: prefix",
		},
		{
			name:    "unknown product",
			doc:     "bins:\n  - {prefix: \"622202\", issuer: ICBC, product: prepaid}\n",
			wantErr: `row 1: prefix 622202: product "prepaid" is not debit, credit or transit`,
		},
		{
			name:    "missing product",
			doc:     "bins:\n  - {prefix: \"622202\", issuer: ICBC}\n",
			wantErr: `product "" is not`,
		},
		{
			name:    "missing issuer",
			doc:     "bins:\n  - {prefix: \"622202\", product: debit}\n",
			wantErr: "row 1: prefix 622202 has no issuer",
		},
		{
			name: "duplicate prefix",
			doc: `bins:
  - {prefix: "622202", issuer: ICBC, product: debit}
  - {prefix: "625330", issuer: ICBC, product: credit}
  - {prefix: "622202", issuer: ABC, product: debit}
`,
			wantErr: "row 3: prefix 622202 listed twice",
		},
		{
			name:    "empty list",
			doc:     "bins: []\n",
			wantErr: "no bins",
		},
		{
			name:    "empty document",
			doc:     "",
			wantErr: "no bins",
		},
		{
			name:    "invalid YAML",
			doc:     "bins:\n  - {prefix: \"622202\", issuer: ICBC, product: debit\n",
			wantErr: "bin table: yaml:",
		},
		{
			name:    "bins is not a list",
			doc:     "bins: 622202\n",
			wantErr: "bin table: yaml:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := bintable.Parse([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted, want an error containing %q; entries %+v", tc.wantErr, table.Entries())
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if table != nil {
					t.Fatalf("a table came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := table.Entries()
			if len(got) != len(tc.want) {
				t.Fatalf("entries %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// nestedDoc holds prefixes inside one another, so that only the longest
// match gives the right answer.
const nestedDoc = `bins:
  - {prefix: "6222", issuer: WIDE, product: credit}
  - {prefix: "622202", issuer: ICBC, product: debit}
  - {prefix: "62220299", issuer: NARROW, product: credit}
  - {prefix: "99100002000", issuer: SPTC, product: transit}
  - {prefix: "625330", issuer: ICBC, product: credit}
`

func TestLookup(t *testing.T) {
	table, err := bintable.Parse([]byte(nestedDoc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pan string
		// wantPrefix is the matching row's prefix; "" means no match.
		wantPrefix string
	}{
		{"only the 4-digit prefix matches", "6222990000000001", "6222"},
		{"6-digit prefix beats the 4-digit one", "6222020000000001", "622202"},
		{"8-digit prefix beats both", "6222029900000001", "62220299"},
		{"one digit off the 8-digit prefix", "6222029800000001", "622202"},
		{"11-digit prefix, 19-digit PAN", "9910000200000000005", "99100002000"},
		{"one digit off the 11-digit prefix", "9910000200100000005", ""},
		{"PAN exactly a 4-digit prefix", "6222", "6222"},
		{"PAN exactly an 11-digit prefix", "99100002000", "99100002000"},
		{"PAN shorter than the 6-digit prefix it starts", "62220", "6222"},
		{"PAN shorter than the only prefix it starts", "62533", ""},
		{"PAN shorter than any prefix", "622", ""},
		{"empty PAN", "", ""},
		{"no prefix matches", "4111111111111111", ""},
		{"same digits further in do not match", "0622202000000001", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := table.Lookup(tc.pan)
			if tc.wantPrefix == "" {
				if ok {
					t.Fatalf("Lookup(%q) = %+v, want no match", tc.pan, e)
				}
				if e != (bintable.Entry{}) {
					t.Fatalf("no match but entry %+v", e)
				}
				return
			}
			if !ok || e.Prefix != tc.wantPrefix {
				t.Fatalf("Lookup(%q) = %+v %v, want prefix %s", tc.pan, e, ok, tc.wantPrefix)
			}
			if !strings.HasPrefix(tc.pan, e.Prefix) {
				t.Fatalf("entry %s is not a prefix of %s", e.Prefix, tc.pan)
			}
		})
	}
	// The issuer and product come from the row that matched.
	if e, _ := table.Lookup("6222020000000001"); e.Issuer != "ICBC" || e.Product != bintable.ProductDebit {
		t.Fatalf("622202 row: %+v", e)
	}
}

// Entries hands out a copy: a caller cannot change the routing.
func TestEntriesIsACopy(t *testing.T) {
	table, err := bintable.Parse([]byte(nestedDoc))
	if err != nil {
		t.Fatal(err)
	}
	rows := table.Entries()
	rows[0].Issuer = "MALLORY"
	if table.Entries()[0].Issuer != "WIDE" {
		t.Fatal("changing the returned rows changed the table")
	}
	if e, _ := table.Lookup("6222990000000001"); e.Issuer != "WIDE" {
		t.Fatalf("lookup after changing the returned rows: %+v", e)
	}
}

// The shipped BIN table routes every row to a member the directory knows,
// with a product that member can hold, and reaches what DESIGN.md says the
// card base is.
func TestEmbeddedBins(t *testing.T) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatalf("configs/bins.yaml: %v", err)
	}
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatalf("configs/issuers.yaml: %v", err)
	}
	members := make(map[string]issuers.Issuer, len(list))
	for _, is := range list {
		members[is.ID] = is
	}
	byProduct := map[bintable.Product]map[string]bool{}
	for _, e := range table.Entries() {
		is, ok := members[e.Issuer]
		if !ok {
			t.Errorf("prefix %s: issuer %s is not in issuers.yaml", e.Prefix, e.Issuer)
			continue
		}
		if (e.Product == bintable.ProductTransit) != (is.Kind == issuers.KindTransit) {
			t.Errorf("prefix %s: %s card at %s, a %s", e.Prefix, e.Product, is.ID, is.Kind)
		}
		if byProduct[e.Product] == nil {
			byProduct[e.Product] = map[string]bool{}
		}
		byProduct[e.Product][e.Issuer] = true
		// Each row is reachable: no longer row hides it completely.
		if got, ok := table.Lookup(e.Prefix); !ok || got != e {
			t.Errorf("Lookup(%s) = %+v, want its own row", e.Prefix, got)
		}
	}
	if n := len(byProduct[bintable.ProductCredit]); n != 20 {
		t.Errorf("credit cards of %d banks, want 20", n)
	}
	if n := len(byProduct[bintable.ProductDebit]); n != 12 {
		t.Errorf("debit cards of %d banks, want 12", n)
	}
	for _, id := range []string{"BOC", "ICBC", "CCB", "BOCOM", "CMB"} {
		if !byProduct[bintable.ProductDebit][id] {
			t.Errorf("no debit BIN for %s", id)
		}
	}
	if n := len(byProduct[bintable.ProductTransit]); n != 6 {
		t.Errorf("transit cards of %d operators, want 6", n)
	}

	// A token is never routable as a card (bins.yaml's own rule).
	var sw struct {
		TokenBINs []string `yaml:"token_bins"`
	}
	if err := yaml.Unmarshal(configs.Switch, &sw); err != nil {
		t.Fatalf("configs/switch.yaml: %v", err)
	}
	if len(sw.TokenBINs) == 0 {
		t.Fatal("switch.yaml lists no token_bins")
	}
	for _, bin := range sw.TokenBINs {
		token := bin + strings.Repeat("0", 16-len(bin))
		if e, ok := table.Lookup(token); ok {
			t.Errorf("token BIN %s routes to %+v", bin, e)
		}
		for _, e := range table.Entries() {
			if strings.HasPrefix(e.Prefix, bin) {
				t.Errorf("BIN %s lies inside token range %s", e.Prefix, bin)
			}
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		b.Fatal(err)
	}
	pans := []string{
		"6222020000000001",    // 6-digit bank BIN
		"9910000200000000005", // 8-digit transit BIN
		"4111111111111111",    // no match: every length is tried
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		table.Lookup(pans[i%len(pans)])
	}
}

func TestPrefixOf(t *testing.T) {
	table, err := bintable.Parse([]byte("bins:\n  - {prefix: \"622202\", issuer: ICBC, product: debit}\n  - {prefix: \"99100001\", issuer: BJT, product: transit}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := table.PrefixOf("BJT", bintable.ProductTransit); got != "99100001" {
		t.Fatalf("BJT transit: %q", got)
	}
	if got := table.PrefixOf("ICBC", bintable.ProductTransit); got != "" {
		t.Fatalf("ICBC transit: %q", got)
	}
}
