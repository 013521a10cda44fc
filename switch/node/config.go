package node

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"
	_ "time/tzdata" // the cut-off time zone must load on machines without zoneinfo

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Config is switchd's configuration, read from YAML (configs/switch.yaml).
type Config struct {
	NodeID      string `yaml:"node_id"`
	Institution string `yaml:"institution"`
	Listen      string `yaml:"listen"`
	// Public serves phones: the token API (/v1/) and the lost-phone page
	// (/lost/), over TLS when PublicTLSCert is set (required off loopback).
	Public        string `yaml:"public"`
	PublicTLSCert string `yaml:"public_tls_cert"`
	PublicTLSKey  string `yaml:"public_tls_key"`
	// Admin serves operators: health, metrics, profiles, key rotation.
	// Requests need the bearer token of AdminTokenFile when it is set
	// (required off loopback).
	Admin          string     `yaml:"admin"`
	AdminTokenFile string     `yaml:"admin_token_file"`
	PublicHTTP     HTTPLimits `yaml:"public_http"`
	AdminHTTP      HTTPLimits `yaml:"admin_http"`
	Data           string     `yaml:"data"`
	KeyFile        string     `yaml:"key_file"`
	KeyEnv         string     `yaml:"key_env"`
	IssuersFile    string     `yaml:"issuers_file"`
	BinsFile       string     `yaml:"bins_file"`
	// AcquirersFile is the registry of acquirers, merchants and terminals
	// ("" means the built-in configs/acquirers.yaml); AcquirerKeysFile
	// holds one key per acquirer (mode 0600), from which each terminal's
	// MAC key derives (docs/wire.md section 11).
	AcquirersFile    string `yaml:"acquirers_file"`
	AcquirerKeysFile string `yaml:"acquirer_keys_file"`
	// ReversalAgeMax is how old an original may be and still be reversed.
	ReversalAgeMax time.Duration `yaml:"reversal_age_max"`
	TokenBINs      []string      `yaml:"token_bins"`
	Cutoff         string        `yaml:"cutoff"`
	Timezone       string        `yaml:"timezone"`
	LogLevel       string        `yaml:"log_level"`
	// LogTransactions logs the one line per authorization at info, not
	// debug (switchd -dev turns it on).
	LogTransactions bool          `yaml:"log_transactions"`
	AdminPprof      bool          `yaml:"admin_pprof"`
	GCPercent       int           `yaml:"gc_percent"`
	SealGrace       time.Duration `yaml:"seal_grace"`
	SealEvery       time.Duration `yaml:"seal_every"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Terminals       struct {
		ConnectionsMax           int           `yaml:"connections_max"`
		InflightPerConnectionMax int           `yaml:"inflight_per_connection_max"`
		FrameBytesMax            int           `yaml:"frame_bytes_max"`
		IdleTimeout              time.Duration `yaml:"idle_timeout"`
		WriteTimeout             time.Duration `yaml:"write_timeout"`
	} `yaml:"terminals"`
	IssuerLinks struct {
		Connections     int           `yaml:"connections"`
		InflightMax     int           `yaml:"inflight_max"`
		RequestTimeout  time.Duration `yaml:"request_timeout"`
		EchoInterval    time.Duration `yaml:"echo_interval"`
		DialTimeout     time.Duration `yaml:"dial_timeout"`
		BackoffMin      time.Duration `yaml:"backoff_min"`
		BackoffMax      time.Duration `yaml:"backoff_max"`
		BreakerFailures int           `yaml:"breaker_failures"`
		BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
	} `yaml:"issuer_links"`
	Advices struct {
		RetryMin    time.Duration `yaml:"retry_min"`
		RetryMax    time.Duration `yaml:"retry_max"`
		AttemptsMax int           `yaml:"attempts_max"`
		InFlightMax int           `yaml:"in_flight_max"`
	} `yaml:"advices"`
	StandIn map[string]authorize.StandInRules `yaml:"stand_in"`
	// RequestorID is the token requestor (wallet provider) ID the token
	// service records with every token it issues, 11 digits.
	RequestorID string `yaml:"requestor_id"`
	// CVMLimit is the amount in fen above which a purchase or top-up needs
	// the cardholder verified on the phone (docs/cryptogram.md).
	CVMLimit iso8583.Amount `yaml:"cvm_limit"`

	// Settlement (cmd/settle reads this file too).
	//
	// Nodes is the network's node list: every node whose sealed days make
	// up a business day. settle refuses a day for which any of them has no
	// sealed file, unless the operator leaves it out by name (-without).
	// Empty means this node alone (node_id, data).
	Nodes []NetworkNode `yaml:"nodes"`
	// CloseDayOnDemand serves POST /admin/close-day, which closes and seals
	// the open business day before its cut-off. switchd -dev sets it; no
	// configuration file can (a production day closes at its cut-off).
	CloseDayOnDemand bool `yaml:"-"`
	// Cluster: off unless cluster.urls is set (docs/cluster.md).
	Cluster ClusterConfig `yaml:"cluster"`
}

// NetworkNode is one node of the network as settle sees it: its ID and
// its data directory (settle reads DATA/sealed/).
type NetworkNode struct {
	ID   string `yaml:"id"`
	Data string `yaml:"data"`
}

// SettleNodes is the node list settle reads: nodes, or this node alone.
func (c Config) SettleNodes() ([]NetworkNode, error) {
	if len(c.Nodes) == 0 {
		return []NetworkNode{{ID: c.NodeID, Data: c.Data}}, nil
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		switch {
		case !nodeIDPattern.MatchString(n.ID):
			return nil, fmt.Errorf("config nodes[%d]: id %q: letters, digits, '.', '_' and '-' only, at most 32", i, n.ID)
		case n.Data == "":
			return nil, fmt.Errorf("config nodes[%d] (%s): data is required", i, n.ID)
		case seen[n.ID]:
			return nil, fmt.Errorf("config nodes: %s is listed twice", n.ID)
		}
		seen[n.ID] = true
	}
	return c.Nodes, nil
}

// CVMLimitDefault is cvm_limit when the config does not set it: 300.00 CNY.
const CVMLimitDefault iso8583.Amount = 300_00

// CutoffSpec parses cutoff and timezone.
func (c Config) CutoffSpec() (journal.Cutoff, error) {
	cut, err := journal.ParseCutoff(c.Cutoff, c.Timezone)
	if err != nil {
		return journal.Cutoff{}, fmt.Errorf("config cutoff: %w", err)
	}
	return cut, nil
}

// Network reads the issuer directory and BIN table the config names, and
// checks they agree: every BIN's issuer is listed, no token BIN is a card BIN.
func (c Config) Network() ([]issuers.Issuer, *bintable.Table, error) {
	issuerDoc, err := readOr(c.IssuersFile, configs.Issuers)
	if err != nil {
		return nil, nil, err
	}
	binDoc, err := readOr(c.BinsFile, configs.Bins)
	if err != nil {
		return nil, nil, err
	}
	list, err := issuers.Parse(issuerDoc)
	if err != nil {
		return nil, nil, err
	}
	table, err := bintable.Parse(binDoc)
	if err != nil {
		return nil, nil, err
	}
	known := make(map[string]bool, len(list))
	for _, is := range list {
		known[is.ID] = true
	}
	for _, e := range table.Entries() {
		if !known[e.Issuer] {
			return nil, nil, fmt.Errorf("bin %s names issuer %s, which the issuer list lacks", e.Prefix, e.Issuer)
		}
	}
	for _, tb := range c.TokenBINs {
		if e, ok := table.Lookup(tb + "0000000000"); ok {
			return nil, nil, fmt.Errorf("token bin %s falls in card bin %s of %s", tb, e.Prefix, e.Issuer)
		}
	}
	return list, table, nil
}

func readOr(path string, builtIn []byte) ([]byte, error) {
	if path == "" {
		return builtIn, nil
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return doc, nil
}

// Bounds of reversal_age_max: a terminal needs at least a second to send
// its reversal after a time-out, and a week is past any network's window.
const (
	reversalAgeMaxLow  = time.Second
	reversalAgeMaxHigh = 7 * 24 * time.Hour
)

// Senders reads the acquirer registry and keys the config names and
// builds the terminal server's MAC checker. Every acquirer must be a member
// of list (the issuer directory), so settlement can pay it.
func (c Config) Senders(list []issuers.Issuer) (*acquirer.Checker, error) {
	reg, err := c.Registry(list)
	if err != nil {
		return nil, err
	}
	keys, err := acquirer.LoadKeysFile(c.AcquirerKeysFile)
	if err != nil {
		return nil, err
	}
	return acquirer.NewChecker(reg, keys)
}

// Registry reads the acquirer registry the config names, its acquirers
// checked against list, the issuer directory.
func (c Config) Registry(list []issuers.Issuer) (*acquirer.Registry, error) {
	doc, err := readOr(c.AcquirersFile, configs.Acquirers)
	if err != nil {
		return nil, err
	}
	members := make(map[string]bool, len(list))
	for _, is := range list {
		members[is.Institution] = true
	}
	return acquirer.Parse(doc, members, c.Institution)
}

// cvmLimitMax is the largest amount DE4 can carry.
const cvmLimitMax iso8583.Amount = 999_999_999_999

// nodeIDPattern keeps node IDs fit for file names and sealed-file headers.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// validate checks what Open relies on.
func (c Config) validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("config: node_id is required")
	case len(c.Institution) != 8:
		return fmt.Errorf("config: institution %q must be 8 digits", c.Institution)
	case c.Listen == "" || c.Public == "" || c.Admin == "" || c.Data == "":
		return fmt.Errorf("config: listen, public, admin and data are required")
	case c.KeyFile == "" && c.KeyEnv == "":
		return fmt.Errorf("config: key_file or key_env is required")
	case len(c.TokenBINs) == 0:
		return fmt.Errorf("config: token_bins is required")
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("config: shutdown_timeout must be positive")
	case c.SealGrace < 0 || c.SealEvery <= 0:
		return fmt.Errorf("config: seal_grace must not be negative and seal_every must be positive")
	case !nodeIDPattern.MatchString(c.NodeID):
		return fmt.Errorf("config: node_id %q: letters, digits, '.', '_' and '-' only, at most 32", c.NodeID)
	case c.GCPercent < 50 || c.GCPercent > 2000:
		return fmt.Errorf("config: gc_percent %d outside 50..2000", c.GCPercent)
	case c.CVMLimit < 0 || c.CVMLimit > cvmLimitMax:
		return fmt.Errorf("config: cvm_limit %d outside 0..%d fen", c.CVMLimit, cvmLimitMax)
	case c.AcquirerKeysFile == "":
		return fmt.Errorf("config: acquirer_keys_file is required")
	case c.ReversalAgeMax < reversalAgeMaxLow || c.ReversalAgeMax > reversalAgeMaxHigh:
		return fmt.Errorf("config: reversal_age_max %v outside %v..%v", c.ReversalAgeMax, reversalAgeMaxLow, reversalAgeMaxHigh)
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	return c.validateListeners()
}

// standInRules resolves each issuer's stand-in rules: its own entry, else
// "default", else none.
func (c Config) standInRules(list []issuers.Issuer) (map[string]authorize.StandInRules, error) {
	ids := []string{standInDefault}
	for _, is := range list {
		ids = append(ids, is.ID)
	}
	for id := range c.StandIn {
		if !slices.Contains(ids, id) {
			// A misspelt issuer would silently get the default rules.
			return nil, fmt.Errorf("config: stand_in.%s: no such issuer in the issuer list%s", id, suggest(id, ids))
		}
	}
	out := make(map[string]authorize.StandInRules, len(list))
	for _, is := range list {
		r, ok := c.StandIn[is.ID]
		if !ok {
			r, ok = c.StandIn["default"]
		}
		if !ok {
			continue
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("config stand_in %s: %w", is.ID, err)
		}
		out[is.ID] = r
	}
	return out, nil
}
