package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
)

func (a *app) storeCmd() *cobra.Command {
	c := &cobra.Command{Use: "store", Short: "Work on the profile store itself: move it to another database"}
	c.AddCommand(a.storeMigrateCmd())
	return c
}

func (a *app) storeMigrateCmd() *cobra.Command {
	var from, to, format string
	c := &cobra.Command{
		Use:   "migrate --from sqlite:PATH --to postgres:DSN",
		Short: "Copy a whole store into an empty one, then check the copy",
		Long: `Copy a whole store into an empty one: profiles with their IDs, the licence
queue, the audit log, the runs with their reports, notification episodes,
and what each target has pending and linked. Both stores are locked as a
sync would lock them while the copy runs, and the copy is counted against
the source at the end.

A store is written sqlite:PATH or postgres:DSN (a postgres:// URL alone
will do). The destination must be empty; a PostgreSQL database is given
its tables here.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			if from == "" || to == "" {
				return usageError{errors.New("store migrate needs --from and --to")}
			}
			fromCfg, err := parseStoreSpec("--from", from)
			if err != nil {
				return err
			}
			toCfg, err := parseStoreSpec("--to", to)
			if err != nil {
				return err
			}
			if fromCfg.Driver == "sqlite" {
				if _, err := os.Stat(fromCfg.Path); errors.Is(err, fs.ErrNotExist) {
					return usageError{fmt.Errorf("--from %s: no such file", fromCfg.Path)}
				}
			}
			log, err := newLogger(config.Log{Level: "warn", Format: "console"}, a.stderr)
			if err != nil {
				return err
			}
			census, err := migrateStore(c.Context(), log, fromCfg, toCfg)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(a.stdout, census)
			}
			return writeCensus(a.stdout, census)
		},
	}
	c.Flags().StringVar(&from, "from", "", "the store to copy: sqlite:PATH or postgres:DSN")
	c.Flags().StringVar(&to, "to", "", "the empty store to copy into: sqlite:PATH or postgres:DSN")
	c.Flags().StringVar(&format, "format", "text", "text|json")
	return c
}

// parseStoreSpec reads sqlite:PATH, postgres:DSN or a bare postgres URL.
func parseStoreSpec(flag, spec string) (config.Store, error) {
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		return config.Store{Driver: "postgres", DSN: config.NewSecret(spec)}, nil
	}
	driver, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return config.Store{}, usageError{fmt.Errorf("%s: want sqlite:PATH or postgres:DSN", flag)}
	}
	switch driver {
	case "sqlite":
		return config.Store{Driver: "sqlite", Path: rest}, nil
	case "postgres", "postgresql":
		return config.Store{Driver: "postgres", DSN: config.NewSecret(rest)}, nil
	}
	return config.Store{}, usageError{fmt.Errorf("%s: store driver %q is not one of sqlite, postgres", flag, driver)}
}

// copyingStore is a store seatsync store migrate can read and fill.
type copyingStore interface {
	store.Store
	store.Exporter
	store.Importer
}

func migrateStore(ctx context.Context, log *zap.Logger, fromCfg, toCfg config.Store) (store.Census, error) {
	open := func(what string, cfg config.Store) (copyingStore, error) {
		s, err := openStore(ctx, cfg, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cs, ok := s.(copyingStore)
		if !ok {
			s.Close()
			return nil, fmt.Errorf("%s: the %s store cannot be copied", what, cfg.Driver)
		}
		return cs, nil
	}
	src, err := open("--from", fromCfg)
	if err != nil {
		return store.Census{}, err
	}
	defer src.Close()
	dst, err := open("--to", toCfg)
	if err != nil {
		return store.Census{}, err
	}
	defer dst.Close()
	var census store.Census
	err = reconcile.WithLock(ctx, src, log, "migrate-from", func() error {
		return reconcile.WithLock(ctx, dst, log, "migrate-to", func() error {
			census, err = store.Copy(ctx, src, dst)
			return err
		})
	})
	if errors.Is(err, store.ErrNotEmpty) {
		return store.Census{}, usageError{fmt.Errorf("--to: %w: store migrate copies into an empty store only, and nothing was written", err)}
	}
	return census, err
}

func writeCensus(w io.Writer, c store.Census) error {
	tw := texttable.New(w)
	fmt.Fprintln(tw, "COPIED\tCOUNT")
	for _, row := range []struct {
		what string
		n    int
	}{
		{"profiles", c.Profiles}, {"queued for a licence", c.Queued}, {"audit entries", c.Audit},
		{"runs", c.Runs}, {"notification episodes", c.Episodes}, {"kept values", c.Values}, {"seat history rows", c.Seats},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", row.what, row.n)
	}
	targets := slices.Sorted(maps.Keys(c.Links))
	for t := range c.Pending {
		if _, ok := c.Links[t]; !ok {
			targets = append(targets, t)
		}
	}
	slices.Sort(targets)
	for _, t := range targets {
		fmt.Fprintf(tw, "pending pushes of %s\t%d\n", t, c.Pending[t])
		fmt.Fprintf(tw, "links of %s\t%d\n", t, c.Links[t])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "The copy matches the source.")
	return err
}
