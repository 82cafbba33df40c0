package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/target"
)

// errDrift is returned by targets verify when it finds drift.
var errDrift = errors.New("targets verify: the application differs from the store")

func (a *app) targetsCmd() *cobra.Command {
	c := &cobra.Command{Use: "targets", Short: "The applications seatsync provisions: status, push, verify"}
	c.AddCommand(a.targetsStatusCmd(), a.targetsPushCmd(), a.targetsVerifyCmd())
	return c
}

// selectTargets returns the configured targets a command covers.
func selectTargets(cfg *config.Config, name string) ([]config.Target, error) {
	if len(cfg.Targets) == 0 {
		return nil, usageError{errors.New("the configuration has no targets")}
	}
	if name == "" {
		return cfg.Targets, nil
	}
	t := cfg.Target(name)
	if t == nil {
		names := make([]string, len(cfg.Targets))
		for i, t := range cfg.Targets {
			names[i] = t.Name
		}
		return nil, usageError{fmt.Errorf("--target %q: no target of that name (targets: %s)", name, strings.Join(names, ", "))}
	}
	return []config.Target{*t}, nil
}

func checkFormat(format string) error {
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("--format %q is not one of text, json", format)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (a *app) targetsStatusCmd() *cobra.Command {
	var name, format string
	c := &cobra.Command{
		Use:   "status",
		Short: "Each target's pending and failed pushes, and why they failed",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			ts, err := selectTargets(e.cfg, name)
			if err != nil {
				return err
			}
			statuses := make([]target.Status, 0, len(ts))
			for _, t := range ts {
				s, err := target.StatusOf(c.Context(), e.store, target.ConfigOf(t))
				if err != nil {
					return fmt.Errorf("target %s: %w", t.Name, err)
				}
				statuses = append(statuses, s)
			}
			if format == "json" {
				return writeJSON(a.stdout, statuses)
			}
			writeStatusText(a.stdout, statuses)
			return nil
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&name, "target", "", "only this target")
	c.Flags().StringVar(&format, "format", "text", "text|json")
	return c
}

func writeStatusText(w io.Writer, statuses []target.Status) {
	tw := texttable.New(w)
	fmt.Fprintln(tw, "TARGET\tTYPE\tLINKED\tPENDING\tFAILED")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", s.Name, s.Type, s.Linked, s.Pending, s.Failed)
	}
	tw.Flush()
	for _, s := range statuses {
		for _, f := range s.Failures {
			fmt.Fprintf(w, "%s: %s refused (HTTP %d): %s; sent again when the profile changes, or by targets push\n", s.Name, f.Username, f.Status, f.Error)
		}
		for _, r := range s.Retrying {
			fmt.Fprintf(w, "%s: %s pending since %s, %d attempts: %s\n", s.Name, r.Username, r.Since.Format("2006-01-02 15:04:05Z07:00"), r.Attempts, r.Error)
		}
	}
}

func (a *app) targetsPushCmd() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "push",
		Short: "Send the pending pushes now, the refused ones too",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := a.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer e.close()
			ts, err := selectTargets(e.cfg, name)
			if err != nil {
				return err
			}
			var results []target.Result
			var left []string
			err = reconcile.WithLock(c.Context(), e.store, e.log, "targets-push", func() error {
				for _, t := range ts {
					res, err := targetTypes().Push(c.Context(), e.store, e.log, t, true)
					results = append(results, res)
					if err != nil || res.Pending+res.Failed > 0 {
						left = append(left, t.Name)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			writeResultsText(a.stdout, results)
			if len(left) > 0 {
				return fmt.Errorf("%w: %s (see targets status)", reconcile.ErrPushes, strings.Join(left, ", "))
			}
			return nil
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&name, "target", "", "only this target")
	return c
}

// pushTarget opens one target's client and sends its pending pushes.
func writeResultsText(w io.Writer, results []target.Result) {
	tw := texttable.New(w)
	fmt.Fprintln(tw, "TARGET\tTYPE\tSENT\tPENDING\tFAILED\tERROR")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.Name, r.Type, r.Sent, r.Pending, r.Failed, r.Error)
	}
	tw.Flush()
	for _, r := range results {
		for _, f := range r.Failures {
			fmt.Fprintf(w, "%s refused %s (HTTP %d): %s\n", r.Name, f.Username, f.Status, f.Error)
		}
	}
}

// verifyResult is one target's entry in `targets verify --format json`.
type verifyResult struct {
	target.Drift
	Differences int `json:"drift"`
	// Fixed is what --fix sent, and the drift that is left after it.
	Fixed *fixed `json:"fixed,omitempty"`
}

type fixed struct {
	Push  target.Result `json:"push"`
	Left  int           `json:"left"`
	Error string        `json:"error,omitempty"`
}

func (a *app) targetsVerifyCmd() *cobra.Command {
	var name, format string
	var fix, allow bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Compare every user of the application with the store; --fix puts the differences right",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			e, err := a.open(c.Context(), !fix)
			if err != nil {
				return err
			}
			defer e.close()
			ts, err := selectTargets(e.cfg, name)
			if err != nil {
				return err
			}
			var out []verifyResult
			run := func() error {
				for _, t := range ts {
					r, err := verifyTarget(c.Context(), e, t, fix, allow)
					out = append(out, r)
					if err != nil {
						return err
					}
				}
				return nil
			}
			if fix {
				err = reconcile.WithLock(c.Context(), e.store, e.log, "targets-verify", run)
			} else {
				err = run()
			}
			if format == "json" {
				if werr := writeJSON(a.stdout, out); werr != nil && err == nil {
					err = werr
				}
			} else {
				writeVerifyText(a.stdout, out)
			}
			if err != nil {
				return err
			}
			for _, r := range out {
				switch {
				case r.Fixed != nil && r.Fixed.Push.Pending+r.Fixed.Push.Failed > 0:
					return fmt.Errorf("%w: target %s", reconcile.ErrPushes, r.Name)
				case r.Fixed != nil && r.Fixed.Left > 0:
					return fmt.Errorf("%w: target %s: %d differences are left after --fix", errDrift, r.Name, r.Fixed.Left)
				case r.Fixed == nil && r.Differences > 0:
					return errDrift
				}
			}
			return nil
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&name, "target", "", "only this target")
	c.Flags().StringVar(&format, "format", "text", "text|json")
	c.Flags().BoolVar(&fix, "fix", false, "send what puts the differences right (under safety.max_deprovision)")
	c.Flags().BoolVar(&allow, "allow-deprovision", false, "with --fix: let this one fix deactivate more than safety.max_deprovision")
	return c
}

// verifyTarget compares one target and, with fix, puts it right: the
// deactivations a fix makes count against the deprovision guard.
func verifyTarget(ctx context.Context, e *env, t config.Target, fix, allow bool) (verifyResult, error) {
	log := e.log.With(zap.String("target", t.Name))
	r := verifyResult{}
	client, err := targetTypes().Open(t, log)
	if err != nil {
		return r, err
	}
	cfg := target.ConfigOf(t)
	v := &target.Verifier{Store: e.store}
	d, err := v.Verify(ctx, cfg, client)
	r.Drift, r.Differences = d, d.Count()
	if err != nil {
		return r, fmt.Errorf("target %s: %w", t.Name, err)
	}
	if !fix || d.Count() == 0 {
		return r, nil
	}
	limit := e.cfg.Safety.MaxDeprovision.Of(d.Managed)
	if n := d.Deprovisions(); n > limit && !allow {
		return r, fmt.Errorf("%w: target %s: --fix would deactivate %d users, more than the limit of %d (safety.max_deprovision); check the list, then run again with --allow-deprovision",
			reconcile.ErrGuardTripped, t.Name, n, limit)
	}
	if err := v.Fix(ctx, cfg, d); err != nil {
		return r, fmt.Errorf("target %s: %w", t.Name, err)
	}
	f := &fixed{}
	f.Push, err = (&target.Pusher{Store: e.store, Log: log}).Push(ctx, cfg, client, true)
	if err != nil {
		f.Error = err.Error()
	}
	after, verr := v.Verify(ctx, cfg, client)
	if verr != nil {
		return r, fmt.Errorf("target %s: %w", t.Name, verr)
	}
	f.Left = after.Count()
	r.Fixed = f
	return r, nil
}

func writeVerifyText(w io.Writer, out []verifyResult) {
	for _, r := range out {
		fmt.Fprintf(w, "target %s (%s): %d users: %d managed, %d unmanaged (%d of them active, never changed by seatsync)\n",
			r.Name, r.Type, r.Users, r.Managed, r.Unmanaged, r.UnmanagedActive)
		if r.Count() == 0 {
			fmt.Fprintln(w, "  no drift")
		}
		line := func(what string, names []string) {
			if len(names) > 0 {
				fmt.Fprintf(w, "  %s (%d): %s\n", what, len(names), list(names))
			}
		}
		line("seat leaks, active in the application but blocked or deleted here", r.SeatLeaks)
		line("missing from the application", r.Missing)
		line("inactive in the application but active here", r.Inactive)
		line("in the application under the same userName, not linked yet", r.Unlinked)
		for _, ch := range r.Changed {
			fmt.Fprintf(w, "  changed: %s: %s\n", ch.Username, strings.Join(ch.Attributes, ", "))
		}
		if f := r.Fixed; f != nil {
			fmt.Fprintf(w, "  fix: sent %d, %d pending, %d failed; %d differences left\n", f.Push.Sent, f.Push.Pending, f.Push.Failed, f.Left)
			if f.Error != "" {
				fmt.Fprintf(w, "  fix: %s\n", f.Error)
			}
		}
	}
}

// list names at most 20 users.
func list(names []string) string {
	if len(names) <= 20 {
		return strings.Join(names, ", ")
	}
	return strings.Join(slices.Clone(names[:20]), ", ") + fmt.Sprintf(" and %d more", len(names)-20)
}
