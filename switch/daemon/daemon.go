// Package daemon is switchd: it reads the configuration, applies the
// command-line overrides, runs a node until SIGINT or SIGTERM and shuts it
// down in order. With Dev it first builds the simulated world on loopback
// (dev.go).
package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/switch/node"
)

// Options are switchd's command-line settings; empty strings keep the
// configuration file's values.
type Options struct {
	ConfigPath string
	Dev        bool
	Listen     string
	Public     string
	Admin      string
	Data       string
	LogLevel   string
	// LogFormat is "console" (one readable line per event) or "json"; ""
	// is the mode's own: console with -dev, JSON otherwise.
	LogFormat string
	// LogTransactions, when set, overrides log_transactions (on with -dev):
	// the one line per authorization at info.
	LogTransactions *bool
	// KeyFile and AcquirerKeysFile replace key_file (and key_env) and
	// acquirer_keys_file; -dev generates its own instead.
	KeyFile          string
	AcquirerKeysFile string
	Seed             int64 // dev: the simulated world's seed
	// DevExternalIssuers: dev mode without in-process issuers; the links go
	// to the configured addresses, served by cmd/issuersim with the same seed.
	DevExternalIssuers bool
	Out                io.Writer // banner and logs
}

// Run runs switchd until ctx ends (the caller ties it to SIGINT/SIGTERM).
// It sets the process umask first (umask_unix.go): everything under the
// data directory is the switch's alone, 0700 and 0600.
func Run(ctx context.Context, opts Options) error {
	restrictFileModes()
	cfg, err := node.LoadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	if opts.Dev {
		if opts.KeyFile != "" || opts.AcquirerKeysFile != "" {
			return fmt.Errorf("-keys and -acquirer-keys are not for -dev: it generates its own keys in its data directory")
		}
		return runDev(ctx, cfg, opts)
	}
	applyOverrides(&cfg, opts)
	log, err := newLogger(cfg.LogLevel, opts.Out, opts.LogFormat == LogFormatConsole)
	if err != nil {
		return err
	}
	n, err := node.Open(cfg, log, nil)
	if err != nil {
		return err
	}
	debug.SetGCPercent(cfg.GCPercent) // validated by Open
	n.Start()
	log.Info().Str("terminals", n.TerminalAddr()).Str("public", n.PublicURL()).Str("admin", n.AdminAddr()).
		Bool("admin_token", cfg.AdminTokenFile != "").Str("data", cfg.Data).Msg("switchd serving")
	go logLinks(ctx, n, log)
	return serveUntilDone(ctx, n, log)
}

// Start-up waits this long for every issuer link to sign on before it
// reports which are up (the links keep redialling after).
const (
	linksSignOnWait  = 5 * time.Second
	linksSignOnEvery = 20 * time.Millisecond
)

// logLinks logs one line once every issuer link is up, or at
// linksSignOnWait with the ones still down: the links' own lines per
// connection are debug, sign-on and echo chatter trace.
func logLinks(ctx context.Context, n *node.Node, log zerolog.Logger) {
	if !awaitLinks(ctx, n) {
		return
	}
	down := n.LinksDown()
	total := len(n.Issuers)
	if len(down) == 0 {
		log.Info().Int("issuers", total).Msg("issuer links up")
		return
	}
	log.Warn().Int("up", total-len(down)).Int("issuers", total).Strs("down", down).Dur("waited", linksSignOnWait).
		Msg("issuer links not all up; retrying with back-off")
}

func applyOverrides(cfg *node.Config, opts Options) {
	if opts.Listen != "" {
		cfg.Listen = opts.Listen
	}
	if opts.Public != "" {
		cfg.Public = opts.Public
	}
	if opts.Admin != "" {
		cfg.Admin = opts.Admin
	}
	if opts.Data != "" {
		cfg.Data = opts.Data
	}
	if opts.LogLevel != "" {
		cfg.LogLevel = opts.LogLevel
	}
	if opts.LogTransactions != nil {
		cfg.LogTransactions = *opts.LogTransactions
	}
	if opts.KeyFile != "" {
		cfg.KeyFile, cfg.KeyEnv = opts.KeyFile, "" // the flag wins over the config's environment variable too
	}
	if opts.AcquirerKeysFile != "" {
		cfg.AcquirerKeysFile = opts.AcquirerKeysFile
	}
}

// awaitLinks waits until every issuer link is up or linksSignOnWait has
// passed; false when ctx ended first.
func awaitLinks(ctx context.Context, n *node.Node) bool {
	deadline := time.Now().Add(linksSignOnWait)
	for len(n.LinksDown()) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(linksSignOnEvery):
		}
	}
	return true
}

// serveUntilDone waits for ctx or a listener failure, then drains.
func serveUntilDone(ctx context.Context, n *node.Node, log zerolog.Logger) error {
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down: draining terminals")
	case serveErr = <-n.Errors():
		log.Error().Err(serveErr).Msg("shutting down")
	}
	start := time.Now()
	if err := n.Shutdown(); err != nil {
		log.Error().Err(err).Msg("drain did not finish in time; remaining connections closed")
		if serveErr == nil {
			serveErr = err
		}
	}
	log.Info().Dur("took", time.Since(start)).Msg("switchd stopped")
	return serveErr
}

// The log formats of -log-format.
const (
	LogFormatConsole = "console"
	LogFormatJSON    = "json"
)

// CheckLogFormat refuses a -log-format other than console, json or "".
func CheckLogFormat(format string) error {
	switch format {
	case "", LogFormatConsole, LogFormatJSON:
		return nil
	}
	return fmt.Errorf("-log-format %q: want console or json", format)
}

// newLogger logs JSON lines, or with console (switchd -dev) one readable
// line per event, coloured only when out is a terminal: escape codes in a
// log file are noise. Timestamps carry milliseconds either way.
func newLogger(level string, out io.Writer, console bool) (zerolog.Logger, error) {
	if out == nil {
		out = os.Stderr
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" || lvl < zerolog.TraceLevel || lvl > zerolog.ErrorLevel {
		return zerolog.Logger{}, fmt.Errorf("log level %q: want trace, debug, info, warn or error", level)
	}
	if console {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000", NoColor: !isTerminal(out)}
	}
	return zerolog.New(out).Level(lvl).Hook(millisecondTime{}), nil
}

// logTimeFormat is RFC 3339 with milliseconds, in the machine's zone.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// millisecondTime stamps each event. zerolog's own Timestamp formats with
// the process-wide TimeFieldFormat (seconds: every console line ended in
// .000); setting that global would race with loggers already running.
type millisecondTime struct{}

func (millisecondTime) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(logTimeFormat))
}

// isTerminal reports whether out is a character device (a terminal), not
// a file or a pipe.
func isTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
