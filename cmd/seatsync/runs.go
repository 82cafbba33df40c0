package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
)

func (a *app) runsCmd() *cobra.Command {
	c := &cobra.Command{Use: "runs", Short: "The run history: list the runs, show one's report"}
	c.AddCommand(a.runsListCmd(), a.runsShowCmd())
	return c
}

func oneOf(flag, value string, allowed ...string) error {
	if !slices.Contains(allowed, value) {
		return usageError{fmt.Errorf("--%s %q is not one of %s", flag, value, strings.Join(allowed, ", "))}
	}
	return nil
}

func (a *app) runsListCmd() *cobra.Command {
	var format string
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "List the most recent runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			if limit <= 0 {
				return usageError{fmt.Errorf("--limit %d: want 1 or more", limit)}
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			runs, err := e.store.Runs(c.Context(), limit)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if format == "json" {
				return writeJSON(a.stdout, reconcile.Records(runs))
			}
			return writeRunsText(a.stdout, runs)
		},
	}
	a.configFlag(c)
	c.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	c.Flags().StringVar(&format, "format", "text", "text|json")
	return c
}

// errorCell is the length a run's error is cut to in runs list.
const errorCell = 40

func writeRunsText(w io.Writer, runs []store.Run) error {
	tw := texttable.New(w)
	fmt.Fprintln(tw, "ID\tMODE\tTRIGGER\tRESULT\tSTARTED\tDURATION\tCREATE\tUPDATE\tMOVE\tACTIVATE\tBLOCK\tDELETE\tERROR")
	for _, r := range runs {
		s, err := reconcile.ParseRunSummary(r.Summary)
		if err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		duration := ""
		if !r.FinishedAt.IsZero() && !r.StartedAt.IsZero() {
			duration = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		msg := r.Error
		if n := []rune(msg); len(n) > errorCell {
			msg = string(n[:errorCell-1]) + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n",
			texttable.Cell(r.ID), texttable.Cell(r.Mode), texttable.Cell(s.Trigger), texttable.Cell(r.Result), timeCell(r.StartedAt), duration,
			s.Create, s.Update, s.Move, s.Activate, s.Block, s.Delete, texttable.Cell(msg))
	}
	return tw.Flush()
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (a *app) runsShowCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a run's report as the run printed it",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := oneOf("format", format, reconcile.Formats...); err != nil {
				return err
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			id := args[0]
			r, err := e.store.Run(c.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return usageError{fmt.Errorf("no run %q (see seatsync runs list)", id)}
			}
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if len(r.Report) == 0 {
				return fmt.Errorf("run %s has no stored report", id)
			}
			if format == "json" {
				// The stored JSON is the report as the run wrote it, the
				// changed fields included, which a decoded Report has lost
				// (Change.Before and After are not in its JSON).
				return writeIndented(a.stdout, r.Report)
			}
			var rep reconcile.Report
			if err := json.Unmarshal(r.Report, &rep); err != nil {
				return fmt.Errorf("run %s: report: %w", id, err)
			}
			return rep.Write(a.stdout, format)
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&format, "format", "text", strings.Join(reconcile.Formats, "|"))
	return c
}

func writeIndented(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := b.WriteTo(w)
	return err
}

func (a *app) auditCmd() *cobra.Command {
	var runID, username, since, format string
	var limit int
	c := &cobra.Command{
		Use:   "audit",
		Short: "The audit log: every applied change, who made it and why, newest first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := oneOf("format", format, "text", "json", "csv"); err != nil {
				return err
			}
			f := store.AuditFilter{RunID: runID, Username: username, Limit: limit}
			if since != "" {
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return usageError{fmt.Errorf("--since %q is not a positive duration (such as 90m or 24h)", since)}
				}
				f.Since = time.Now().Add(-d)
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			es, err := e.store.AuditMatching(c.Context(), f)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if es == nil {
				es = []store.AuditEntry{}
			}
			switch format {
			case "json":
				return writeJSON(a.stdout, es)
			case "csv":
				return writeAuditCSV(a.stdout, es)
			}
			tw := texttable.New(a.stdout)
			fmt.Fprintln(tw, "TIME\tRUN\tACTOR\tACTION\tUSERNAME\tREASON")
			for _, e := range es {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", timeCell(e.At), texttable.Cell(e.RunID), texttable.Cell(e.Actor),
					texttable.Cell(e.Action), texttable.Cell(e.Username), texttable.Cell(e.Reason))
			}
			return tw.Flush()
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&runID, "run", "", "only this run's entries")
	c.Flags().StringVar(&username, "user", "", "only this user's entries (any case)")
	c.Flags().StringVar(&since, "since", "", "only the entries of this last while (a duration: 90m, 24h)")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many entries, the newest (0: all)")
	c.Flags().StringVar(&format, "format", "text", "text|json|csv")
	return c
}

// writeAuditCSV writes one row per entry; before and after are the JSON
// objects of the fields the change set (store.AuditEntry), empty when
// there is none.
func writeAuditCSV(w io.Writer, es []store.AuditEntry) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "at", "run_id", "actor", "action", "username", "reason", "before", "after"}) //nolint:errcheck // cw.Error below
	for _, e := range es {
		at := ""
		if !e.At.IsZero() {
			at = e.At.UTC().Format(time.RFC3339Nano)
		}
		cw.Write([]string{strconv.FormatInt(e.Seq, 10), at, e.RunID, e.Actor, e.Action, e.Username, e.Reason, string(e.Before), string(e.After)}) //nolint:errcheck // cw.Error below
	}
	cw.Flush()
	return cw.Error()
}
