// Package cli is the flag language the seven commands share (docs/cli.md):
// a flag set whose -h prints the usage on stdout and exits 0, whose errors
// are returned for the caller to print on one line and exit 2, and whose
// renamed flags keep working for one release as hidden aliases that warn.
//
// The usage names the command by the fixed name it is given, never by
// os.Args[0], which under 'go run' is a build-cache path.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses every command uses for the parse step.
const (
	ExitOK    = 0
	ExitUsage = 2
)

// ErrHelp is returned by Parse after -h printed the usage.
var ErrHelp = flag.ErrHelp

// FlagSet is a flag.FlagSet with a fixed command name, a text before the
// flag list, and deprecated aliases hidden from it.
type FlagSet struct {
	*flag.FlagSet
	name    string
	about   string
	stdout  io.Writer
	stderr  io.Writer
	aliases map[string]string // old name -> new name
	also    []string          // more usage lines, such as a subcommand's
}

// AlsoUsage adds a line under the usage line, such as another form of the
// command ("settle reconcile [flags]").
func (fs *FlagSet) AlsoUsage(line string) { fs.also = append(fs.also, line) }

// New makes the flag set of command name ("termsim pay"). about is printed
// between the usage line and the flags; it may be empty. -h goes to stdout,
// deprecation warnings to stderr.
func New(name, about string, stdout, stderr io.Writer) *FlagSet {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	fs := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name,
		about: about, stdout: stdout, stderr: stderr, aliases: map[string]string{}}
	fs.FlagSet.SetOutput(io.Discard) // the caller prints errors, on one line
	fs.FlagSet.Usage = func() {}
	return fs
}

// Name is the command's fixed name.
func (fs *FlagSet) Name() string { return fs.name }

// Alias makes -old a hidden, deprecated spelling of the defined flag -now:
// setting it sets -now (as if -now were given) and prints one line on
// stderr. It is not listed by -h.
func (fs *FlagSet) Alias(old, now string) {
	target := fs.Lookup(now)
	if target == nil {
		panic("cli: alias " + old + " of undefined flag " + now)
	}
	fs.aliases[old] = now
	fs.Var(aliasValue{fs: fs, old: old, now: now, target: target.Value}, old, "deprecated: use -"+now)
}

type aliasValue struct {
	fs       *FlagSet
	old, now string
	target   flag.Value
}

func (a aliasValue) String() string {
	if a.target == nil {
		return ""
	}
	return a.target.String()
}

func (a aliasValue) Set(v string) error {
	fmt.Fprintf(a.fs.stderr, "%s: -%s is deprecated and goes away in the next release; use -%s (docs/cli.md)\n", a.fs.name, a.old, a.now)
	return a.fs.FlagSet.Set(a.now, v)
}

func (a aliasValue) IsBoolFlag() bool {
	b, ok := a.target.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Parse parses args. With -h (or -help) it prints the usage on stdout and
// returns ErrHelp; the caller exits 0. Any other error is returned; the
// caller prints it on one line, with a hint to -h, and exits 2. Arguments left
// after the flags are an error.
func (fs *FlagSet) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.PrintUsage(fs.stdout)
		return ErrHelp
	case err != nil:
		return err
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// ParseArg is Parse for a command that takes one argument after its flags
// (tapctl keys init FILE): it returns that argument, and an error when
// there is none or more than one.
func (fs *FlagSet) ParseArg(args []string, what string) (string, error) {
	err := fs.FlagSet.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.PrintUsage(fs.stdout)
		return "", ErrHelp
	case err != nil:
		return "", err
	case fs.NArg() == 0:
		return "", fmt.Errorf("want %s after the flags", what)
	case fs.NArg() > 1:
		return "", fmt.Errorf("unexpected argument %q after %s", fs.Arg(1), what)
	}
	return fs.Arg(0), nil
}

// PrintUsage writes the usage line, the about text and every flag but the
// deprecated aliases, with its default.
func (fs *FlagSet) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [flags]\n", fs.name)
	for _, l := range fs.also {
		fmt.Fprintf(w, "       %s\n", l)
	}
	if fs.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(fs.about, "\n"))
	}
	shown := flag.NewFlagSet(fs.name, flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if _, alias := fs.aliases[f.Name]; alias {
			return
		}
		shown.Var(f.Value, f.Name, f.Usage)
		shown.Lookup(f.Name).DefValue = f.DefValue // not a value already parsed
	})
	fmt.Fprintln(w, "\nflags:")
	shown.SetOutput(w)
	shown.PrintDefaults()
}

// Dispatch picks a subcommand from args[0]. It returns the index of the
// chosen command, or, when there is none to run, the exit status: 0 after
// printing the usage for -h, -help, --help or help; 2 after printing an
// error for no command or an unknown one.
func Dispatch(name, usage string, commands []string, args []string, stdout, stderr io.Writer) (int, int) {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: no command given\n\n%s", name, usage)
		return -1, ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return -1, ExitOK
	}
	for i, c := range commands {
		if c == args[0] {
			return i, ExitOK
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q (%s -h lists the commands)\n", name, args[0], name)
	return -1, ExitUsage
}
