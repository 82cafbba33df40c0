// Command seatsync keeps an application's user profiles in step with
// directories and HR exports without ever going over a licence.
// This file holds only flags and wiring; the work happens in the packages.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/reconcile"
)

// Exit codes (SPEC section 6).
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitGuard   = 3
	exitChanges = 4
	exitPushes  = 5
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errChanges is returned by plan --check when the plan is not empty.
var errChanges = errors.New("plan --check: there are changes to make")

// stopGrace is how long a one-shot command has to return once SIGTERM or
// SIGINT has cancelled its context. Everything it does stops at a
// cancelled context (a pull, a store transaction, which is rolled back);
// the grace only bounds a call no context reaches, such as reading a CSV
// export that is a named pipe nobody writes to. serve has its own
// shutdown (server.shutdown_timeout).
const stopGrace = 5 * time.Second

func main() {
	// The first SIGTERM or SIGINT cancels the context: the command stops
	// what it is doing and exits. Then the signals get their default
	// action back, so a second one ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	// Reports can have hundreds of thousands of lines: buffer them.
	stdout := bufio.NewWriterSize(os.Stdout, 1<<16)
	code := run(ctx, os.Args[1:], stdout, os.Stderr)
	if err := stdout.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "seatsync: write output: %v\n", err)
		code = max(code, exitFailed)
	}
	os.Exit(code)
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	// Cobra checks the command, its flags and its arguments before the
	// persistent pre-run; an error before it is a usage error.
	started := false
	root.PersistentPreRun = func(c *cobra.Command, _ []string) {
		started = true
		if c.Name() != "serve" {
			go exitWhenStuck(ctx, stderr)
		}
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if !started {
		err = usageError{fmt.Errorf("%w (see seatsync --help)", err)}
	}
	code := exitCode(err)
	switch {
	case code == exitChanges:
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "seatsync: interrupted (%v): %v\n", context.Cause(ctx), err)
	default:
		fmt.Fprintf(stderr, "seatsync: %v\n", err)
	}
	return code
}

// exitWhenStuck ends the process stopGrace after ctx is cancelled by a
// signal, for a one-shot command still busy in a call the context does
// not reach. A store transaction it may have open is rolled back by the
// store (SQLite's journal), as after a crash.
func exitWhenStuck(ctx context.Context, stderr io.Writer) {
	<-ctx.Done()
	time.Sleep(stopGrace)
	fmt.Fprintf(stderr, "seatsync: interrupted (%v), and still busy %s later: exiting without waiting for it\n", context.Cause(ctx), stopGrace)
	os.Exit(exitFailed)
}

// usageError marks a bad command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var problems config.Problems
	var usage usageError
	switch {
	case errors.Is(err, errChanges), errors.Is(err, errDrift):
		return exitChanges
	case errors.Is(err, reconcile.ErrGuardTripped):
		return exitGuard
	case errors.Is(err, reconcile.ErrPushes):
		return exitPushes
	case errors.As(err, &problems), errors.As(err, &usage), errors.Is(err, reconcile.ErrUsage):
		return exitUsage
	}
	return exitFailed
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "seatsync",
		Short:         "Sync people from directories into seat-licensed application profiles",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Version = version // --version prints what `version` does
	root.SetVersionTemplate("seatsync {{.Version}}\n")
	app := &app{stdout: stdout, stderr: stderr}
	root.AddCommand(
		app.planCmd(), app.syncCmd(), app.serveCmd(), app.validateCmd(), app.seatsCmd(),
		app.profilesCmd(), app.targetsCmd(), app.runsCmd(), app.auditCmd(), app.storeCmd(), app.licenseCmd(), versionCmd(stdout),
	)
	addCompletions(root)
	return root
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(stdout, "seatsync %s\n", version)
		},
	}
}
