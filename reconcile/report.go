package reconcile

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// Report is what plan and sync print (SPEC section 9). Its JSON form is
// the contract; more fields may be added.
type Report struct {
	RunID      string         `json:"run_id"`
	Mode       string         `json:"mode"`              // plan | sync
	Trigger    string         `json:"trigger,omitempty"` // what started it: schedule | start | api | cli
	Result     string         `json:"result"`
	Error      string         `json:"error,omitempty"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	Sources    []SourceResult `json:"sources"`
	Summary    Summary        `json:"summary"`
	Pools      []PoolResult   `json:"pools"`
	// Products are the product licences, shaped like Pools.
	Products []ProductResult `json:"products"`
	Changes  []Change        `json:"changes"`
	Skipped  []Skipped       `json:"skipped"`
	Guard    Guard           `json:"guard"`
	// Targets is what each target was sent (sync) or would be (plan).
	Targets []target.Result `json:"targets"`
	// License is the vendor licence the run used, when
	// licensing.license_file is set.
	License *LicenseResult `json:"license,omitempty"`
	// LimitChanges are the pools whose limit changed since the last sync
	// (a sync's report only).
	LimitChanges []LimitChange `json:"limit_changes,omitempty"`

	changesGz *changesGzip // the changes compressed during the apply
}

// Run results.
const (
	ResultOK           = "ok"
	ResultFailed       = "failed"
	ResultGuardTripped = "guard_tripped"
	ResultChanges      = "changes" // a plan that found changes to make
	ResultNoChanges    = "no_changes"
	// ResultSkipped is a sync turned away because another process held the
	// store's run lock; it wrote nothing and is not a failure.
	ResultSkipped = "skipped"
	// ResultRunning is recorded when a sync takes the lock, and replaced
	// when it ends; ResultInterrupted replaces it when the process died
	// first (the next sync finds and ends it).
	ResultRunning     = store.RunRunning
	ResultInterrupted = "interrupted"
)

// Formats the report can be written in.
var Formats = []string{"text", "json", "csv", "markdown"}

// Write renders the report in one of Formats.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "", "text":
		return r.writeText(w)
	case "json":
		// Indented as it is encoded: a first sync's report is tens of
		// megabytes, and held whole, compact and indented, it raised the
		// peak memory of a first sync of 100,000 by some 140 MB.
		d := jsontext.NewIndenter(w)
		if err := r.WriteJSON(d); err != nil {
			return err
		}
		if err := d.Close(); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	case "csv":
		return r.writeCSV(w)
	case "markdown", "md":
		return r.writeMarkdown(w)
	}
	return fmt.Errorf("unknown report format %q (one of %s)", format, strings.Join(Formats, ", "))
}

// reportFields is Report without its methods, for encoding/json.
type reportFields Report

// jsonChunk is how much of a report WriteJSON collects before it writes.
const jsonChunk = 64 << 10

// EncodeJSON encodes the report as compact JSON, the same document
// json.Marshal would give, into one buffer sized up front.
func (r *Report) EncodeJSON() ([]byte, error) {
	var buf bytes.Buffer
	// About 400 bytes per change on a first sync.
	buf.Grow(1024 + 400*len(r.Changes))
	if err := r.WriteJSON(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteJSON writes the report as compact JSON, the same document
// json.Marshal would give, in pieces of about 64 KiB. A first sync can
// report hundreds of thousands of changes, tens of megabytes of JSON:
// written this way the whole document is never held in memory, and the
// changes are encoded without reflection.
func (r *Report) WriteJSON(w io.Writer) error {
	head, tail, err := r.shell()
	if err != nil {
		return err
	}
	if r.Changes == nil {
		_, err := w.Write(append(head, tail...))
		return err
	}
	b := make([]byte, 0, jsonChunk+4096)
	b = append(b, head...)
	b = append(b, '[')
	b, err = appendChanges(w, b, r.Changes, 0)
	if err != nil {
		return err
	}
	b = append(b, ']')
	b = append(b, tail...)
	_, err = w.Write(b)
	return err
}

// shell encodes the report but its changes: the JSON before their value
// (up to `"changes":`) and after it.
func (r *Report) shell() (head, tail []byte, err error) {
	shell := reportFields(*r)
	shell.Changes = nil
	doc, err := json.Marshal(&shell)
	if err != nil {
		return nil, nil, fmt.Errorf("encode report: %w", err)
	}
	// Inside JSON strings quotes are escaped, so this text can only be the
	// key itself.
	const hole = `"changes":null`
	at := bytes.Index(doc, []byte(hole))
	if at < 0 {
		return nil, nil, fmt.Errorf("encode report: no changes field")
	}
	if r.Changes == nil {
		return doc, nil, nil
	}
	return doc[:at+len(`"changes":`)], doc[at+len(hole):], nil
}

// appendChanges appends the JSON of changes to b, the first preceded by a
// comma unless it is the report's first (index first == 0), and writes b
// to w whenever it holds jsonChunk bytes. It returns what is left of b.
func appendChanges(w io.Writer, b []byte, changes []Change, first int) ([]byte, error) {
	for i := range changes {
		if first+i > 0 {
			b = append(b, ',')
		}
		b = changes[i].appendJSON(b)
		if len(b) >= jsonChunk {
			if _, err := w.Write(b); err != nil {
				return nil, err
			}
			b = b[:0]
		}
	}
	return b, nil
}

// changesGzip compresses a sync's changes, as WriteJSON encodes them,
// while the apply is still writing them. A change's JSON is final once
// the transaction that wrote it has committed (its Result is set then);
// the apply says so with final, and the changes are compressed in the
// report's order, as far as they are all final. Done this way on a first
// sync of 100,000 people, the 40 MB of JSON compress beside the apply
// instead of after it (see docs/benchmarks.md, LDAP source).
type changesGzip struct {
	changes []Change
	isFinal []bool // the apply's own
	next    int    // the apply's own: the first change not final yet
	// upto is next as the compressing goroutine reads it; wake tells it
	// upto moved (without waiting: the apply never waits for it), and is
	// closed by finish.
	upto atomic.Int64
	wake chan struct{}
	done chan struct{}
	buf  bytes.Buffer // one gzip member, complete once done is closed
	err  error
}

// compressChanges starts compressing r's changes: see changesGzip.
func (r *Report) compressChanges() *changesGzip {
	z := &changesGzip{changes: r.Changes, isFinal: make([]bool, len(r.Changes)), wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.changesGz = z
	go z.compress()
	return z
}

func (z *changesGzip) compress() {
	defer close(z.done)
	zw, err := gzip.NewWriterLevel(&z.buf, gzip.BestSpeed)
	if err != nil {
		z.err = err
		return
	}
	b := make([]byte, 0, jsonChunk+4096)
	from := 0
	more := true
	for more && z.err == nil {
		_, more = <-z.wake
		upto := int(z.upto.Load())
		b, z.err = appendChanges(zw, b, z.changes[from:upto], from)
		from = upto
	}
	if z.err == nil {
		_, z.err = zw.Write(b)
	}
	if z.err == nil {
		z.err = zw.Close()
	}
}

// final marks the changes at indexes as final. It is called from one
// goroutine, the apply's.
func (z *changesGzip) final(indexes []int) {
	for _, i := range indexes {
		z.isFinal[i] = true
	}
	from := z.next
	for z.next < len(z.isFinal) && z.isFinal[z.next] {
		z.next++
	}
	if z.next > from {
		z.upto.Store(int64(z.next))
		select {
		case z.wake <- struct{}{}:
		default: // it is awake already, and will read upto again
		}
	}
}

// finish marks every change final: the apply is over.
func (z *changesGzip) finish() {
	z.next = len(z.isFinal)
	z.upto.Store(int64(z.next))
	close(z.wake)
}

// gzipWriter is how the run's record gets the report: compressed, with
// the changes compressChanges compressed; nil when they were not.
func (r *Report) gzipWriter() func(w io.Writer) error {
	z := r.changesGz
	if z == nil {
		return nil
	}
	return func(w io.Writer) error {
		<-z.done
		if z.err != nil {
			return fmt.Errorf("compress report: %w", z.err)
		}
		head, tail, err := r.shell()
		if err != nil {
			return err
		}
		if err := gzipMember(w, append(head, '[')); err != nil {
			return err
		}
		if _, err := w.Write(z.buf.Bytes()); err != nil {
			return err
		}
		return gzipMember(w, append([]byte{']'}, tail...))
	}
}

// gzipMember writes b to w as one gzip member.
func gzipMember(w io.Writer, b []byte) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	return zw.Close()
}

func (r *Report) headline() string {
	s := r.Summary
	var b strings.Builder
	if r.Mode == "plan" {
		b.WriteString("Plan (dry run, nothing written): ")
	} else {
		b.WriteString("Sync: ")
	}
	fmt.Fprintf(&b, "%d create, %d update, %d move, %d activate, %d block, %d delete",
		s.Create, s.Update, s.Move, s.Activate, s.Block, s.Delete)
	if s.Grant+s.Recall > 0 || len(r.Products) > 0 {
		fmt.Fprintf(&b, ", %d grant, %d recall", s.Grant, s.Recall)
	}
	fmt.Fprintf(&b, "; %d unchanged, %d skipped", s.Unchanged, s.Skipped)
	return b.String()
}

func (r *Report) writeText(w io.Writer) error {
	fmt.Fprintf(w, "%s\n", r.headline())
	fmt.Fprintf(w, "run %s  result %s  %s\n", r.RunID, r.Result, r.StartedAt.Format(time.RFC3339))
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	if r.License != nil {
		fmt.Fprintln(w, r.License.Text())
	}
	if r.Guard.Tripped || r.Guard.Overridden {
		for _, g := range r.Guard.Sources {
			if g.Tripped {
				state := "REFUSED, nothing written (run again with --allow-deprovision if this is intended)"
				if r.Guard.Overridden {
					state = "overridden by --allow-deprovision"
				}
				fmt.Fprintf(w, "safety guard: %s: %s\n", g.Why, state)
			}
		}
	}
	for _, s := range r.Sources {
		if s.LeavesSuspended != "" {
			fmt.Fprintf(w, "leavers not handled: %s\n", s.LeavesSuspended)
		}
		if s.IncrementalFallback != "" {
			fmt.Fprintf(w, "source %s was read in full: %s\n", s.Name, s.IncrementalFallback)
		}
	}
	tw := texttable.New(w)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "SOURCE\tTYPE\tREAD\tIDENTITIES\tSKIPPED")
	for _, s := range r.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", s.Name, s.Type, s.Read(), s.Identities, s.Skipped)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "POOL\tLIMIT\tRESERVE\tUSED BEFORE\tUSED AFTER\tREMAINING\tQUEUED\tOVERAGE")
	for _, p := range r.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\n", p.Name, limitText(p.Limit, p.Unlimited), p.Reserve,
			p.UsedBefore, p.UsedAfter, remainingText(p.RemainingAfter, p.Unlimited), p.QueuedAfter, p.Overage)
	}
	tw.Flush()
	if len(r.Products) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "PRODUCT\tLIMIT\tUSED BEFORE\tUSED AFTER\tREMAINING\tQUEUED\tOVERAGE")
		for _, p := range r.Products {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\n", p.Name, productLimitText(&p), p.UsedBefore, p.UsedAfter,
				remainingText(p.RemainingAfter, p.Unlimited && !p.Disabled), p.QueuedAfter, p.Overage)
		}
		tw.Flush()
	}
	if len(r.Changes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "ACTION\tUSERNAME\tSOURCE\tAREA\tSTATE\tREASON\tQUEUE\tCHANGED")
		for _, c := range r.Changes {
			q := ""
			if c.QueuePosition > 0 {
				q = "#" + strconv.Itoa(c.QueuePosition)
			}
			action := actionText(&c)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", action, texttable.Cell(c.Username), texttable.Cell(c.Source),
				texttable.Cell(c.Area), c.State, c.Reason, q, texttable.Cell(fieldList(&c)))
		}
		tw.Flush()
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w)
		sent := "SENT"
		if r.Mode == ModePlan {
			sent = "WOULD SEND"
		}
		fmt.Fprintf(tw, "TARGET\tTYPE\t%s\tPENDING\tFAILED\tERROR\n", sent)
		for _, t := range r.Targets {
			n, pending := t.Sent, t.Pending
			if r.Mode == ModePlan {
				n, pending = t.Pending, 0
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", t.Name, t.Type, n, pending, t.Failed, t.Error)
		}
		tw.Flush()
		for _, t := range r.Targets {
			for _, f := range t.Failures {
				fmt.Fprintf(w, "target %s refused %s: %s\n", t.Name, f.Username, f.Error)
			}
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "SKIPPED SOURCE\tEXTERNAL ID\tWHERE\tWHY")
		for _, s := range r.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", texttable.Cell(s.Source), texttable.Cell(s.ExternalID), texttable.Cell(s.Where), s.Reason)
		}
		tw.Flush()
	}
	return nil
}

// actionText is a change's action as the text and markdown reports show
// it: with the product of a grant or recall, and a result that is not
// "applied".
func actionText(c *Change) string {
	action := string(c.Action)
	if c.Product != "" {
		action += " " + c.Product
	}
	if c.Result != "" && c.Result != "applied" {
		action += " (" + c.Result + ")"
	}
	return action
}

// productLimitText is a product's limit, and why it gives nothing.
func productLimitText(p *ProductResult) string {
	s := limitText(p.Limit, p.Unlimited)
	if p.Disabled {
		s += " (off: " + p.EnabledBy + ")"
	}
	return s
}

func limitText(limit int, unlimited bool) string {
	if unlimited {
		return "unlimited"
	}
	return strconv.Itoa(limit)
}

func remainingText(n int, unlimited bool) string {
	if unlimited {
		return "-"
	}
	return strconv.Itoa(n)
}

// fieldList names the changed fields of a change, with old -> new for the
// short ones.
func fieldList(c *Change) string {
	if c.Action == ActionCreate || c.Action == ActionDelete {
		return ""
	}
	fields := c.FieldChanges()
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		f := fields[k]
		if k == "groups" {
			parts = append(parts, k)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %v -> %v", k, show(f.Old), show(f.New)))
	}
	return strings.Join(parts, "; ")
}

func show(v any) string {
	if v == nil {
		return "(none)"
	}
	if s, ok := v.(string); ok && s == "" {
		return `""`
	}
	return fmt.Sprint(v)
}

// csvHeader is the header of the csv report: one row per change.
var csvHeader = []string{"run_id", "mode", "action", "username", "source", "external_id", "area", "pool", "state", "reason", "queue_position", "result", "fields", "product"}

func (r *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, c := range r.Changes {
		q := ""
		if c.QueuePosition > 0 {
			q = strconv.Itoa(c.QueuePosition)
		}
		fields := ""
		if f := c.FieldChanges(); len(f) > 0 {
			b, err := json.Marshal(f)
			if err != nil {
				return err
			}
			fields = string(b)
		}
		rec := []string{r.RunID, r.Mode, string(c.Action), c.Username, c.Source, c.ExternalID, c.Area, c.Pool,
			string(c.State), c.Reason, q, c.Result, fields, c.Product}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (r *Report) writeMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# seatsync %s %s\n\n", r.Mode, r.RunID)
	fmt.Fprintf(w, "%s.\n\nResult: **%s**, started %s.\n\n", r.headline(), r.Result, r.StartedAt.Format(time.RFC3339))
	if r.Error != "" {
		fmt.Fprintf(w, "Error: %s\n\n", mdEscape(r.Error))
	}
	if r.License != nil {
		for _, line := range strings.Split(r.License.Text(), "\n") {
			fmt.Fprintf(w, "> %s\n\n", mdEscape(line))
		}
	}
	for _, g := range r.Guard.Sources {
		if g.Tripped {
			fmt.Fprintf(w, "> **Safety guard:** %s\n\n", mdEscape(g.Why))
		}
	}
	for _, s := range r.Sources {
		if s.LeavesSuspended != "" {
			fmt.Fprintf(w, "> **Leavers not handled:** %s\n\n", mdEscape(s.LeavesSuspended))
		}
		if s.IncrementalFallback != "" {
			fmt.Fprintf(w, "> **Source %s was read in full:** %s\n\n", mdEscape(s.Name), mdEscape(s.IncrementalFallback))
		}
	}
	fmt.Fprintf(w, "## Pools\n\n| pool | limit | reserve | used before | used after | remaining | queued | overage |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Pools {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s | %d | %d |\n", mdEscape(p.Name), limitText(p.Limit, p.Unlimited), p.Reserve,
			p.UsedBefore, p.UsedAfter, remainingText(p.RemainingAfter, p.Unlimited), p.QueuedAfter, p.Overage)
	}
	if len(r.Products) > 0 {
		fmt.Fprintf(w, "\n## Products\n\n| product | limit | used before | used after | remaining | queued | overage |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range r.Products {
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %d | %d |\n", mdEscape(p.Name), productLimitText(&p), p.UsedBefore, p.UsedAfter,
				remainingText(p.RemainingAfter, p.Unlimited && !p.Disabled), p.QueuedAfter, p.Overage)
		}
	}
	fmt.Fprintf(w, "\n## Sources\n\n| source | type | read | identities | skipped |\n|---|---|---|---:|---:|\n")
	for _, s := range r.Sources {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d |\n", mdEscape(s.Name), s.Type, s.Read(), s.Identities, s.Skipped)
	}
	if len(r.Changes) > 0 {
		fmt.Fprintf(w, "\n## Changes\n\n| action | username | source | area | state | reason | queue | changed |\n|---|---|---|---|---|---|---:|---|\n")
		for _, c := range r.Changes {
			q := ""
			if c.QueuePosition > 0 {
				q = strconv.Itoa(c.QueuePosition)
			}
			action := actionText(&c)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", action, mdEscape(c.Username), mdEscape(c.Source),
				mdEscape(c.Area), c.State, c.Reason, q, mdEscape(fieldList(&c)))
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "\n## Targets\n\n| target | type | sent | pending | failed | error |\n|---|---|---:|---:|---:|---|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s |\n", mdEscape(t.Name), t.Type, t.Sent, t.Pending, t.Failed, mdEscape(t.Error))
		}
		for _, t := range r.Targets {
			for _, f := range t.Failures {
				fmt.Fprintf(w, "\n- %s refused **%s** (HTTP %d): %s", mdEscape(t.Name), mdEscape(f.Username), f.Status, mdEscape(f.Error))
			}
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "\n## Skipped\n\n| source | external id | where | why |\n|---|---|---|---|\n")
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", mdEscape(s.Source), mdEscape(s.ExternalID), mdEscape(s.Where), mdEscape(s.Reason))
		}
	}
	return nil
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

// Read says how a source was read, for the text, markdown and HTML reports:
// "full", or "changes" (with the delete notices, or "no deletes" when the
// read could not see them).
func (s SourceResult) Read() string {
	switch {
	case s.Full:
		return "full"
	case s.NoDeletes:
		return "changes, no deletes"
	case s.Deletes > 0:
		return fmt.Sprintf("changes, %d deleted", s.Deletes)
	}
	return "changes"
}
