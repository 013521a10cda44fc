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
	log, err := newLogger(cfg.LogLevel, opts.Out, false)
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
	return serveUntilDone(ctx, n, log)
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
	if opts.KeyFile != "" {
		cfg.KeyFile, cfg.KeyEnv = opts.KeyFile, "" // the flag wins over the config's environment variable too
	}
	if opts.AcquirerKeysFile != "" {
		cfg.AcquirerKeysFile = opts.AcquirerKeysFile
	}
}

// serveUntilDone waits for ctx or a listener failure, then drains.
func serveUntilDone(ctx context.Context, n *node.Node, log zerolog.Logger) error {
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down: draining terminals")
	case serveErr = <-n.Errors():
		log.Error().Err(serveErr).Msg("listener failed: shutting down")
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

func newLogger(level string, out io.Writer, console bool) (zerolog.Logger, error) {
	if out == nil {
		out = os.Stderr
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	if console {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}
