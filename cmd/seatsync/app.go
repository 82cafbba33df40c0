package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/connector/ldap"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/postgres"
	"github.com/seatsync/seatsync/store/sqlite"
	"github.com/seatsync/seatsync/target"
	"github.com/seatsync/seatsync/target/scim"
)

// app carries what every command shares.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	// serving is set by serve: a daemon keeps the configured (or default)
	// JSON logs at info; one-shot commands default to warnings on the
	// console, so that a run prints its report and little else.
	serving bool
}

// registry lists the source types built into this binary: the only list
// of them (the loader takes their keys from it).
func registry() connector.Registry {
	return connector.Registry{
		"csv":  csvsource.Kind,
		"ldap": ldap.Kind,
		"okta": okta.Kind,
	}
}

// targetTypes lists the target types built into this binary.
func targetTypes() target.Registry {
	return target.Registry{
		"scim": scim.Kind,
	}
}

// plugins are the types whose own configuration keys the loader decodes.
func plugins() config.Plugins {
	return config.Plugins{Sources: registry().Kinds(), Targets: targetTypes().Kinds()}
}

func (a *app) configFlag(c *cobra.Command) {
	c.Flags().StringVarP(&a.configPath, "config", "c", "", "configuration file (YAML), required")
}

// loadConfig loads the configuration; a file that cannot be read is a
// configuration problem (exit 2), like one that does not validate.
func (a *app) loadConfig() (*config.Config, error) {
	if a.configPath == "" {
		return nil, usageError{errors.New("missing -c FILE: the configuration file is required")}
	}
	cfg, err := config.Load(a.configPath, plugins())
	var problems config.Problems
	if err != nil && !errors.As(err, &problems) {
		return cfg, usageError{err}
	}
	return cfg, err
}

func newLogger(cfg config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, usageError{fmt.Errorf("log.level: %w", err)}
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if cfg.Format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), level)), nil
}

func openStore(ctx context.Context, cfg config.Store, log *zap.Logger) (store.Store, error) {
	switch cfg.Driver {
	case "", "sqlite":
		s, err := sqlite.Open(ctx, cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	case "postgres":
		// The DSN is a secret: postgres.Open keeps it, and its password,
		// out of its errors.
		s, err := postgres.Open(ctx, cfg.DSN.Reveal(), log)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
	return nil, usageError{fmt.Errorf("store.driver %q is not one of sqlite, postgres", cfg.Driver)}
}

// env is a loaded configuration with its logger and open store.
type env struct {
	cfg     *config.Config
	log     *zap.Logger
	store   store.Store
	cleanup func()
}

func (e *env) close() {
	_ = e.store.Close()
	if e.cleanup != nil {
		e.cleanup()
	}
	_ = e.log.Sync()
}

// open loads the configuration and opens the store. Commands that only
// read (plan, seats, profiles list) never create a store: when the SQLite
// file does not exist yet they work on an empty throwaway store, so a dry
// run on a new machine leaves nothing behind.
func (a *app) open(ctx context.Context, readOnly bool) (*env, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return a.openEnv(ctx, cfg, readOnly)
}

func (a *app) openEnv(ctx context.Context, cfg *config.Config, readOnly bool) (*env, error) {
	lc := cfg.Log
	if !a.serving {
		if !cfg.Given("log.level") {
			lc.Level = "warn"
		}
		if !cfg.Given("log.format") {
			lc.Format = "console"
		}
	}
	log, err := newLogger(lc, a.stderr)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: log}
	sc := cfg.Store
	if readOnly && sc.Driver == "sqlite" {
		if _, err := os.Stat(sc.Path); errors.Is(err, fs.ErrNotExist) {
			dir, err := os.MkdirTemp("", "seatsync-empty-")
			if err != nil {
				return nil, err
			}
			log.Info("the store does not exist yet: reading an empty one", zap.String("path", sc.Path))
			sc.Path, e.cleanup = filepath.Join(dir, "empty.db"), func() { os.RemoveAll(dir) }
		}
	}
	e.store, err = openStore(ctx, sc, log)
	if err != nil {
		if e.cleanup != nil {
			e.cleanup()
		}
		return nil, err
	}
	return e, nil
}

func (e *env) runner() *reconcile.Runner {
	return &reconcile.Runner{
		Config:      e.cfg,
		Store:       e.store,
		Connectors:  registry(),
		TargetTypes: targetTypes(),
		Notifier:    notify.Log{Logger: e.log},
		Log:         e.log,
	}
}

// reportFlags are the flags plan and sync share.
type reportFlags struct {
	sources []string
	format  string
	output  string
}

func (f *reportFlags) add(c *cobra.Command) {
	c.Flags().StringSliceVar(&f.sources, "source", nil, "only pull this source (repeatable); seats still span the whole store")
	c.Flags().StringVar(&f.format, "format", "text", "report format: "+strings.Join(reconcile.Formats, "|"))
	c.Flags().StringVarP(&f.output, "output", "o", "", "write the report to this file instead of standard output")
}

func (f *reportFlags) check() error {
	if !slices.Contains(reconcile.Formats, f.format) {
		return usageError{fmt.Errorf("--format %q is not one of %s", f.format, strings.Join(reconcile.Formats, ", "))}
	}
	return nil
}

func (a *app) writeReport(rep *reconcile.Report, f *reportFlags, out *reportFile) error {
	if out == nil {
		return rep.Write(a.stdout, f.format)
	}
	w := bufio.NewWriter(out.f)
	err := rep.Write(w, f.format)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = out.commit()
	}
	if err != nil {
		return fmt.Errorf("write report %s: %w", out.path, err)
	}
	return nil
}

// reportFile is where -o writes the report. It is opened before the run,
// so that a path that cannot be written is refused before anything is
// applied. A regular file (or a new one) is written beside its final name
// and renamed into place at the end, so a reader never sees half a report
// and a run that dies leaves the old one; it is created 0600, since a
// report names people. Anything else (a FIFO, /dev/stdout) is written to
// directly.
type reportFile struct {
	path string
	f    *os.File
	temp bool
	done bool
}

func openReport(path string) (*reportFile, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("-o %s is a directory", path)
	case err == nil && !fi.Mode().IsRegular():
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("-o: %w", err)
		}
		return &reportFile{path: path, f: f}, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("-o: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("-o %s: cannot write a file there: %w", path, err)
	}
	return &reportFile{path: path, f: f, temp: true}, nil
}

func (r *reportFile) commit() error {
	if !r.temp {
		r.done = true
		return r.f.Close()
	}
	if err := r.f.Sync(); err != nil {
		return err
	}
	if err := r.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(r.f.Name(), r.path); err != nil {
		return err
	}
	r.done = true
	return nil
}

// abandon removes a report that was not written in full; after commit it
// does nothing.
func (r *reportFile) abandon() {
	if r.done {
		return
	}
	_ = r.f.Close()
	if r.temp {
		_ = os.Remove(r.f.Name())
	}
}

func (a *app) runCmd(mode string) *cobra.Command {
	var f reportFlags
	var check, allow, full bool
	c := &cobra.Command{Args: cobra.NoArgs}
	c.Flags().BoolVar(&full, "full", false, "read every source in full, also those set to incremental reads")
	switch mode {
	case reconcile.ModePlan:
		c.Use, c.Short = "plan", "Dry run: pull, plan and report what a sync would change; writes nothing"
		c.Flags().BoolVar(&check, "check", false, "exit 4 when there are changes to make")
	default:
		c.Use, c.Short = "sync", "Pull, plan and apply once"
		c.Flags().BoolVar(&allow, "allow-deprovision", false, "let this one run go over safety.max_deprovision")
	}
	a.configFlag(c)
	f.add(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		var out *reportFile
		if f.output != "" {
			// Before anything is applied: exit 1 says nothing was.
			o, err := openReport(f.output)
			if err != nil {
				return usageError{fmt.Errorf("%w; nothing was done", err)}
			}
			out = o
			defer out.abandon()
		}
		e, err := a.open(c.Context(), mode == reconcile.ModePlan)
		if err != nil {
			return err
		}
		defer e.close()
		runner := e.runner()
		if mode == reconcile.ModeSync {
			d, err := notify.FromConfig(e.cfg.Notify, e.store, e.log)
			if err != nil {
				return usageError{fmt.Errorf("notify: %w", err)}
			}
			defer closeNotifier(c.Context(), d, e.log)
			runner.Notifier = d
		}
		var line *progressLine
		if isTerminal(a.stderr) {
			// Long pulls show progress on the terminal, never in the report.
			line = newProgressLine(a.stderr)
			runner.Progress = line.update
		}
		rep, runErr := runner.Run(c.Context(), reconcile.Options{Mode: mode, Sources: f.sources, AllowDeprovision: allow, Full: full, Trigger: reconcile.TriggerCLI})
		if line != nil {
			line.done()
		}
		if errors.Is(runErr, reconcile.ErrUsage) {
			return runErr // a wrong --source is no run: no report, only the error
		}
		if err := a.writeReport(rep, &f, out); err != nil {
			return err
		}
		if runErr != nil {
			return runErr
		}
		if check && len(rep.Changes) > 0 {
			return errChanges
		}
		return nil
	}
	return c
}

func (a *app) planCmd() *cobra.Command { return a.runCmd(reconcile.ModePlan) }
func (a *app) syncCmd() *cobra.Command { return a.runCmd(reconcile.ModeSync) }

func (a *app) validateCmd() *cobra.Command {
	var connect bool
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration file; with --connect also reach every source and the store",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			var problems config.Problems
			if err != nil && !errors.As(err, &problems) {
				return err
			}
			// The licence file is checked when it is there (the loader
			// does not know the licence format).
			var warnings config.Problems
			verdict := ""
			if cfg != nil {
				var lp config.Problems
				lp, warnings, verdict = licenseProblems(cfg)
				problems = append(problems, lp...)
				warnings = append(slices.Clone(cfg.Warnings), warnings...)
			}
			// Warnings do not change the exit code; they go to stderr so
			// that stdout stays the verdict ("ok" or the problems).
			for _, w := range warnings {
				fmt.Fprintln(a.stderr, "warning: "+w.String())
			}
			if len(problems) > 0 {
				fmt.Fprintln(a.stdout, problems.Error())
				return usageError{fmt.Errorf("%s in %s", plural(len(problems), "problem"), a.configPath)}
			}
			if _, err := notify.Senders(cfg.Notify); err != nil {
				return usageError{fmt.Errorf("notify: %w", err)}
			}
			if connect {
				if err := a.connect(c.Context(), cfg, registry()); err != nil {
					return err
				}
			}
			if verdict != "" {
				fmt.Fprintln(a.stdout, verdict)
			}
			fmt.Fprintln(a.stdout, "ok")
			return nil
		},
	}
	a.configFlag(c)
	c.Flags().BoolVar(&connect, "connect", false, "also open the store and reach every source, counting the people in scope")
	return c
}

func (a *app) connect(ctx context.Context, cfg *config.Config, reg connector.Registry) error {
	e, err := a.openEnv(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer e.close()
	profiles, err := e.store.Profiles(ctx)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if e.cleanup != nil {
		if dir := filepath.Dir(cfg.Store.Path); !isDir(dir) {
			return fmt.Errorf("store: %s cannot be created: directory %s does not exist", cfg.Store.Path, dir)
		}
		fmt.Fprintf(a.stdout, "store %s: ok, %s does not exist yet; the first sync creates it\n", cfg.Store.Driver, cfg.Store.Path)
	} else {
		fmt.Fprintf(a.stdout, "store %s: ok, %d profiles\n", cfg.Store.Driver, len(profiles))
	}
	for _, sc := range cfg.Sources {
		src, err := reg.Open(sc, e.log.With(zap.String("source", sc.Name)))
		if err != nil {
			return err
		}
		n, err := connector.Check(ctx, src)
		if err != nil {
			return fmt.Errorf("source %s: %w", sc.Name, err)
		}
		fmt.Fprintf(a.stdout, "source %s: ok, %d people in scope\n", sc.Name, n)
	}
	return nil
}

func (a *app) seatsCmd() *cobra.Command {
	var format, since string
	var history bool
	c := &cobra.Command{
		Use:   "seats",
		Short: "Show each pool's seats (limit, active, remaining, queued, blocked, exempt) and each product's licences",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			period, err := config.ParseDays(since)
			if err != nil {
				return usageError{fmt.Errorf("--since: %w", err)}
			}
			if c.Flags().Changed("since") && !history {
				return usageError{errors.New("--since needs --history")}
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			profiles, err := e.store.Profiles(c.Context())
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			pol, err := e.policy(c.Context())
			if err != nil {
				return err
			}
			seats := pol.Count(profiles)
			now := time.Now().UTC()
			from := now.Add(-licensing.ForecastWindow)
			if since := now.Add(-period.Duration); history && since.Before(from) {
				from = since
			}
			rows, err := e.store.SeatHistory(c.Context(), from)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			reconcile.ForecastStatus(seats, rows, now)
			if history {
				since := now.Add(-period.Duration)
				shown := rows[:0:0]
				for _, r := range rows {
					if !r.At.Before(since) {
						shown = append(shown, r)
					}
				}
				return admin.WriteSeatHistory(a.stdout, shown, seats, format)
			}
			var products []licensing.ProductStatus
			if len(pol.Products) > 0 {
				grants, err := e.store.Grants(c.Context())
				if err != nil {
					return fmt.Errorf("store: %w", err)
				}
				products = pol.CountProducts(grants)
			}
			return admin.WriteSeats(a.stdout, seats, pol.Queue(profiles), products, format)
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&format, "format", "text", "text|json")
	c.Flags().BoolVar(&history, "history", false, "print the seat history each sync recorded, and each pool's forecast")
	c.Flags().StringVar(&since, "since", "30d", "with --history: how far back, in days (30d) or a Go duration (720h)")
	return c
}

func (a *app) profilesCmd() *cobra.Command {
	c := &cobra.Command{Use: "profiles", Short: "List, block, unblock and delete profiles; grant and recall product licences"}
	c.AddCommand(a.profilesListCmd(), a.profilesActionCmd("block"), a.profilesActionCmd("unblock"), a.profilesActionCmd("delete"),
		a.profilesProductCmd("grant"), a.profilesProductCmd("recall"))
	return c
}

func (a *app) profilesListCmd() *cobra.Command {
	var state, reason, area, format, fields, delimiter string
	c := &cobra.Command{
		Use:   "list",
		Short: "List profiles (csv for spreadsheets, json for machines)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f := admin.Filter{State: model.State(state), Reason: model.ParseReason(reason), Area: area}
			if state != "" && f.State != model.Active && f.State != model.Blocked {
				return usageError{fmt.Errorf("--state %q is not one of active, blocked", state)}
			}
			if reason != "" && !f.Reason.Valid() {
				return usageError{fmt.Errorf("--reason %q is not one of license (or licence), admin, source_disabled, left_source", reason)}
			}
			if !slices.Contains([]string{"text", "json", "csv"}, format) {
				return usageError{fmt.Errorf("--format %q is not one of text, json, csv", format)}
			}
			fl, err := admin.ParseFields(fields)
			if err != nil {
				return usageError{fmt.Errorf("--fields: %w", err)}
			}
			delim, err := admin.ParseDelimiter(delimiter)
			if err != nil {
				return usageError{fmt.Errorf("--delimiter: %w", err)}
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			all, err := e.store.Profiles(c.Context())
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			pol, err := e.policy(c.Context())
			if err != nil {
				return err
			}
			var list []model.Profile
			for i := range all {
				if f.Match(&all[i], pol) {
					list = append(list, all[i])
				}
			}
			queue := pol.Queue(all)
			if f.Reason == model.ReasonLicense && f.State != model.Active {
				// The licence queue reads best in the order seats are given.
				admin.QueueOrder(list, queue)
			}
			opt := admin.ListOptions{Format: format, Fields: fl, Delimiter: delim, Queue: queue}
			if slices.Contains(fl, "products") {
				grants, err := e.store.Grants(c.Context())
				if err != nil {
					return fmt.Errorf("store: %w", err)
				}
				opt.Products = admin.Holdings(grants)
			}
			return admin.WriteProfiles(a.stdout, list, pol, opt)
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&state, "state", "", "active|blocked")
	c.Flags().StringVar(&reason, "reason", "", "block reason: license (licence is accepted), admin, source_disabled, left_source")
	c.Flags().StringVar(&area, "area", "", "only this area")
	c.Flags().StringVar(&format, "format", "text", "text|json|csv")
	c.Flags().StringVar(&fields, "fields", strings.Join(admin.DefaultFields, ","), "comma-separated fields: "+strings.Join(admin.Fields, ","))
	c.Flags().StringVar(&delimiter, "delimiter", ",", "csv delimiter")
	return c
}

func (a *app) profilesActionCmd(action string) *cobra.Command {
	var queue bool
	short := map[string]string{
		"block":   "Block profiles (reason admin; a sync never clears it)",
		"unblock": "Unblock profiles; each takes a seat, or with --queue joins the licence queue when none is free",
		"delete":  "Delete profiles permanently",
	}[action]
	c := &cobra.Command{
		Use:   action + " USERNAME...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, usernames []string) error {
			e, err := a.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer e.close()
			pol, err := e.policy(c.Context())
			if err != nil {
				return err
			}
			ad := &admin.Admin{Store: e.store, Policy: pol, Actor: cliActor(),
				Targets: target.Configs(e.cfg.Targets)}
			failed := 0
			for _, u := range usernames {
				var out admin.Outcome
				switch action {
				case "block":
					out, err = ad.Block(c.Context(), u)
				case "unblock":
					out, err = ad.Unblock(c.Context(), u, queue)
				default:
					out, err = ad.Delete(c.Context(), u)
				}
				if err != nil {
					failed++
					fmt.Fprintf(a.stderr, "%s %s: %v\n", action, u, err)
					continue
				}
				e.log.Info("admin action", zap.String("actor", ad.Actor), zap.String("action", out.Action), zap.String("username", out.Username),
					zap.String("state", string(out.State)), zap.String("reason", string(out.Reason)))
				fmt.Fprintf(a.stdout, "%s: %s\n", out.Username, out.Message)
			}
			if failed > 0 {
				return fmt.Errorf("%s failed for %d of %d profiles", action, failed, len(usernames))
			}
			return nil
		},
	}
	a.configFlag(c)
	if action == "unblock" {
		c.Flags().BoolVar(&queue, "queue", false, "when the pool is full, put the profile into the licence queue instead of failing")
	}
	return c
}

// profilesProductCmd is profiles grant and profiles recall: a product
// licence given or taken by hand, for one or many users. Each user is one
// transaction; the others go on when one fails, and the command then
// fails naming them.
func (a *app) profilesProductCmd(action string) *cobra.Command {
	short := map[string]string{
		"grant":  "Grant a product licence by hand; each takes a licence, and a sync keeps it until the profile is blocked or deleted",
		"recall": "Recall a product licence (or a place in its queue) by hand",
	}[action]
	c := &cobra.Command{
		Use:   action + " PRODUCT USERNAME...",
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			product, usernames := args[0], args[1:]
			e, err := a.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer e.close()
			pol, err := e.policy(c.Context())
			if err != nil {
				return err
			}
			if pol.ProductIndex(product) < 0 {
				names := make([]string, 0, len(pol.Products))
				for _, p := range pol.Products {
					names = append(names, p.Name)
				}
				return usageError{fmt.Errorf("%s: no product %q in licensing.products (products: %s)", action, product, strings.Join(names, ", "))}
			}
			ad := &admin.Admin{Store: e.store, Policy: pol, Actor: cliActor()}
			var failed []string
			for _, u := range usernames {
				var out admin.Outcome
				if action == "grant" {
					out, err = ad.Grant(c.Context(), product, u)
				} else {
					out, err = ad.Recall(c.Context(), product, u)
				}
				if err != nil {
					failed = append(failed, u)
					fmt.Fprintf(a.stderr, "%s %s %s: %v\n", action, product, u, err)
					continue
				}
				e.log.Info("admin action", zap.String("actor", ad.Actor), zap.String("action", out.Action), zap.String("product", product),
					zap.String("username", out.Username))
				fmt.Fprintf(a.stdout, "%s: %s\n", out.Username, out.Message)
			}
			if len(failed) > 0 {
				return fmt.Errorf("%s %s failed for %d of %d profiles: %s", action, product, len(failed), len(usernames), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	a.configFlag(c)
	return c
}

// cliActor names who runs a command, for the audit log: "cli:" and the
// OS account's name.
func cliActor() string {
	return "cli:" + osUserName(user.Current, os.Getenv, os.Getuid)
}

// osUserName is the name of the account running seatsync, from the user
// database; where it has none (a container run with an arbitrary uid),
// $USER; else the numeric uid, as "uid=1000".
func osUserName(current func() (*user.User, error), getenv func(string) string, getuid func() int) string {
	if u, err := current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := getenv("USER"); name != "" {
		return name
	}
	return "uid=" + strconv.Itoa(getuid())
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// closeNotifier lets queued notifications go out, for up to 30 seconds.
// When a signal has stopped the command (cmd is cancelled), it waits for
// half of stopGrace only, so that what it drops is logged before the
// process gives up waiting for the command.
func closeNotifier(cmd context.Context, d *notify.Dispatcher, log *zap.Logger) {
	wait := 30 * time.Second
	if cmd.Err() != nil {
		wait = stopGrace / 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		log.Warn("notifications still queued at exit were dropped", zap.Error(err))
	}
}
