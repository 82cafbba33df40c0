package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/daemon"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/server"
)

func (a *app) serveCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run syncs on the configured schedules and serve the HTTP API and status page until SIGTERM; SIGHUP reloads the configuration",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			a.serving = true
			e, err := a.openEnv(c.Context(), cfg, false)
			if err != nil {
				return err
			}
			defer e.close()
			notifier, err := notify.FromConfig(cfg.Notify, e.store, e.log)
			if err != nil {
				return usageError{fmt.Errorf("notify: %w", err)}
			}
			// serve ends on a signal; its shutdown has its own bounds, and
			// queued notifications get the full time.
			defer closeNotifier(context.Background(), notifier, e.log)
			// SIGHUP would end the process by default: catch it first.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGHUP)
			defer signal.Stop(sig)
			hup := make(chan struct{}, 1)
			go func() {
				for range sig {
					select {
					case hup <- struct{}{}:
					default: // a reload is already pending
					}
				}
			}()
			load := func() (*config.Config, error) { return config.Load(a.configPath, plugins()) }
			d := daemon.New(cfg, e.store, registry(), notifier, load, e.log)
			d.TargetTypes = targetTypes()
			// c.Context() is cancelled on SIGTERM and SIGINT (main).
			if err := d.Serve(c.Context(), hup); err != nil {
				if errors.Is(err, server.ErrNotLoopback) {
					return usageError{err}
				}
				e.log.Error("serve", zap.Error(err))
				return err
			}
			return nil
		},
	}
	a.configFlag(c)
	return c
}
