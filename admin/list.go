package admin

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Fields are the names `profiles list --fields` takes; they are also the
// csv header and the json keys (SPEC section 6).
var Fields = []string{
	"username", "email", "given_name", "family_name", "display_name", "title", "department", "groups",
	"area", "pool", "state", "block_reason", "exempt", "source", "external_id",
	"queued_at", "activated_at", "blocked_at", "updated_at", "queue_position", "products",
}

// DefaultFields is the default selection of `profiles list`.
var DefaultFields = []string{"username", "email", "given_name", "family_name", "area", "state", "block_reason"}

// Filter selects profiles to list; empty fields match everything.
type Filter struct {
	State  model.State
	Reason model.Reason
	Area   string
	// Pool is the name of the licence pool the profile's area belongs to.
	Pool string
	// UpdatedSince keeps profiles updated at that time or later.
	UpdatedSince time.Time
}

// Match reports whether a profile passes the filter; pol tells the pool
// of an area.
func (f Filter) Match(p *model.Profile, pol *licensing.Policy) bool {
	return (f.State == "" || p.State == f.State) &&
		(f.Reason == "" || p.BlockReason == f.Reason) &&
		(f.Area == "" || p.Area == f.Area) &&
		(f.Pool == "" || pol.PoolName(p.Area) == f.Pool) &&
		(f.UpdatedSince.IsZero() || !p.UpdatedAt.Before(f.UpdatedSince))
}

// Page returns the profiles that come after the folded username after in
// the order of folded usernames (the order of store.Profiles, and unique,
// so a page boundary never splits or repeats a profile whatever changed
// in between), at most limit of them, and the folded username to start
// the next page after ("" on the last page).
func Page(profiles []model.Profile, after string, limit int) (page []model.Profile, next string) {
	sorted := slices.IsSortedFunc(profiles, byFold)
	if !sorted {
		profiles = slices.Clone(profiles)
		slices.SortStableFunc(profiles, byFold)
	}
	start := 0
	if after != "" {
		start, _ = slices.BinarySearchFunc(profiles, after, func(p model.Profile, key string) int {
			return strings.Compare(model.FoldUsername(p.Username), key)
		})
		for start < len(profiles) && model.FoldUsername(profiles[start].Username) == after {
			start++
		}
	}
	end := min(start+limit, len(profiles))
	page = profiles[start:end]
	if end < len(profiles) && len(page) > 0 {
		next = model.FoldUsername(page[len(page)-1].Username)
	}
	return page, next
}

func byFold(a, b model.Profile) int {
	return strings.Compare(model.FoldUsername(a.Username), model.FoldUsername(b.Username))
}

// ParseFields checks a comma-separated field list.
func ParseFields(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultFields, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !contains(Fields, f) {
			return nil, fmt.Errorf("unknown field %q (one of %s)", f, strings.Join(Fields, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// QueueOrder sorts profiles into licence queue order, the order seats are
// given (queue comes from licensing.Policy.Queue over every stored
// profile): pool by pool as configured, then queue position. Profiles not
// in the queue follow, by folded username.
func QueueOrder(profiles []model.Profile, queue []licensing.QueueEntry) {
	rank := make(map[string]int, len(queue))
	for i, q := range queue {
		rank[model.FoldUsername(q.Username)] = i
	}
	slices.SortStableFunc(profiles, func(a, b model.Profile) int {
		ra, qa := rank[model.FoldUsername(a.Username)]
		rb, qb := rank[model.FoldUsername(b.Username)]
		switch {
		case qa && qb:
			return cmp.Compare(ra, rb)
		case qa:
			return -1
		case qb:
			return 1
		}
		return byFold(a, b)
	})
}

// positions maps folded usernames to their 1-based place in their pool's
// queue.
func positions(queue []licensing.QueueEntry) map[string]int {
	out := make(map[string]int, len(queue))
	for _, q := range queue {
		out[model.FoldUsername(q.Username)] = q.Position
	}
	return out
}

// value renders one field of a profile as text; json keeps some typed.
// pos holds the queue positions (see positions).
func value(p *model.Profile, pol *licensing.Policy, pos map[string]int, prods map[int64][]string, field string) any {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	if v, ok := p.Text(field); ok {
		return v
	}
	switch field {
	case "groups":
		if p.Groups == nil {
			return []string{}
		}
		return p.Groups
	case "pool":
		return pol.PoolName(p.Area)
	case "state":
		return string(p.State)
	case "block_reason":
		return string(p.BlockReason)
	case "exempt":
		return pol.IsExempt(p.Username)
	case "queued_at":
		return ts(p.QueuedAt)
	case "activated_at":
		return ts(p.ActivatedAt)
	case "blocked_at":
		return ts(p.BlockedAt)
	case "updated_at":
		return ts(p.UpdatedAt)
	case "products":
		// The product licences the profile holds: separated by spaces in
		// text and csv, an array in json (as groups are).
		return spaced(append([]string{}, prods[p.ID]...))
	case "queue_position":
		// A number in json; null (empty in text and csv) when not queued,
		// so the key is there whenever it was asked for.
		if n, ok := pos[model.FoldUsername(p.Username)]; ok {
			return n
		}
		return nil
	}
	return ""
}

// spaced is a list written separated by spaces in text and csv.
type spaced []string

func text(v any) string {
	switch v := v.(type) {
	case spaced:
		return strings.Join(v, " ")
	case []string:
		return strings.Join(v, "|")
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// ListOptions control how profiles are written.
type ListOptions struct {
	Format    string // text | json | csv
	Fields    []string
	Delimiter rune // csv only
	// Queue is the licence queue of every pool, from
	// licensing.Policy.Queue over all stored profiles (not only the ones
	// written, so a filtered or paged list shows true positions). Nil
	// computes it from the profiles written.
	Queue []licensing.QueueEntry
	// Products are the product licences each profile holds, by profile
	// ID, for the products field (see Holdings).
	Products map[int64][]string
}

// Holdings maps each profile ID to the products it holds (not those it
// waits for), sorted.
func Holdings(grants []store.Grant) map[int64][]string {
	out := map[int64][]string{}
	for _, g := range grants {
		if g.State == store.GrantGranted {
			out[g.ProfileID] = append(out[g.ProfileID], g.Product)
		}
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// WriteProfiles writes profiles in the chosen format.
func WriteProfiles(w io.Writer, profiles []model.Profile, pol *licensing.Policy, opt ListOptions) error {
	fields := opt.Fields
	if len(fields) == 0 {
		fields = DefaultFields
	}
	queue := opt.Queue
	if queue == nil && slices.Contains(fields, "queue_position") {
		queue = pol.Queue(profiles)
	}
	pos := positions(queue)
	switch opt.Format {
	case "", "text":
		tw := texttable.New(w)
		fmt.Fprintf(w, "%d profiles\n", len(profiles))
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(fields, "\t")))
		for i := range profiles {
			row := make([]string, len(fields))
			for j, f := range fields {
				row[j] = texttable.Cell(text(value(&profiles[i], pol, pos, opt.Products, f)))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		return tw.Flush()
	case "json":
		rows := make([]orderedRow, len(profiles))
		for i := range profiles {
			row := orderedRow{fields: fields, values: make([]any, len(fields))}
			for j, f := range fields {
				row.values[j] = value(&profiles[i], pol, pos, opt.Products, f)
			}
			rows[i] = row
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		if opt.Delimiter != 0 {
			cw.Comma = opt.Delimiter
		}
		if err := cw.Write(fields); err != nil {
			return err
		}
		row := make([]string, len(fields))
		for i := range profiles {
			for j, f := range fields {
				row[j] = text(value(&profiles[i], pol, pos, opt.Products, f))
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("unknown format %q (one of text, json, csv)", opt.Format)
}

// orderedRow is one profile as a JSON object whose keys come in the order
// of --fields: a map would have them sorted, and a reader who asked for
// "email,username" expects to see them so.
type orderedRow struct {
	fields []string
	values []any
}

func (r orderedRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r.fields {
		if slices.Contains(r.fields[:i], f) {
			continue // a field named twice is one key, as in a map
		}
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(r.values[i])
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ParseDelimiter checks a csv delimiter: one character, not a quote or
// line break.
func ParseDelimiter(s string) (rune, error) {
	if s == `\t` || s == "tab" {
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(s)
	if s == "" || size != len(s) || r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError {
		return 0, fmt.Errorf("delimiter must be one character other than a quote or line break, got %q", s)
	}
	return r, nil
}

// SeatsQueueLen is how many of each pool's queue `seats` shows.
const SeatsQueueLen = 10

// SeatsQueueEntry is one of the first in a pool's queue, as `seats
// --format json` shows it.
type SeatsQueueEntry struct {
	Position int       `json:"position"` // 1 is next
	Username string    `json:"username"`
	QueuedAt time.Time `json:"queued_at"`
}

// SeatsPool is one pool of `seats --format json`: the licence panel's
// numbers and the first SeatsQueueLen of its queue (queued is the whole
// queue's length).
type SeatsPool struct {
	licensing.Status
	Queue []SeatsQueueEntry `json:"queue"`
}

// WriteSeats writes what an admin's licence panel shows for each pool,
// and the first SeatsQueueLen of each pool's queue (queue comes from
// licensing.Policy.Queue), then each product's licences (from
// licensing.Policy.CountProducts; none when no product is configured).
func WriteSeats(w io.Writer, seats []licensing.Status, queue []licensing.QueueEntry, products []licensing.ProductStatus, format string) error {
	heads := make(map[string][]SeatsQueueEntry, len(seats))
	for _, q := range queue {
		if len(heads[q.Pool]) < SeatsQueueLen {
			heads[q.Pool] = append(heads[q.Pool], SeatsQueueEntry{Position: q.Position, Username: q.Username, QueuedAt: q.QueuedAt})
		}
	}
	switch format {
	case "", "text":
		tw := texttable.New(w)
		fmt.Fprintln(tw, "POOL\tLIMIT\tRESERVE\tACTIVE\tREMAINING\tQUEUED\tBLOCKED\tEXEMPT\tOVERAGE")
		for _, s := range seats {
			limit, remaining := strconv.Itoa(s.Limit), strconv.Itoa(s.Remaining)
			if s.Unlimited {
				limit, remaining = "unlimited", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\n", s.Name, limit, s.Reserve, s.Active, remaining, s.Queued, s.Blocked, s.Exempt, s.Overage)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range seats {
			if s.Forecast != nil {
				if _, err := fmt.Fprintf(w, "%s forecast: %s\n", s.Name, s.Forecast.Text); err != nil {
					return err
				}
			}
		}
		for _, s := range seats {
			head := heads[s.Name]
			if len(head) == 0 {
				continue
			}
			parts := make([]string, len(head))
			for i, q := range head {
				parts[i] = fmt.Sprintf("%d %s", q.Position, q.Username)
				if !q.QueuedAt.IsZero() {
					parts[i] += " (since " + q.QueuedAt.UTC().Format("2006-01-02 15:04") + ")"
				}
			}
			line := s.Name + " queue: " + strings.Join(parts, ", ")
			if more := s.Queued - len(head); more > 0 {
				line += fmt.Sprintf(", and %d more", more)
			}
			if _, err := fmt.Fprintln(w, line); err != nil {
				return err
			}
		}
		for _, p := range products {
			if _, err := fmt.Fprintln(w, ProductLine(p)); err != nil {
				return err
			}
		}
		return nil
	case "json":
		out := make([]SeatsPool, len(seats))
		for i, s := range seats {
			if s.Unlimited {
				s.Remaining = 0
			}
			out[i] = SeatsPool{Status: s, Queue: heads[s.Name]}
			if out[i].Queue == nil {
				out[i].Queue = []SeatsQueueEntry{}
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if products == nil {
			products = []licensing.ProductStatus{}
		}
		for i := range products {
			if products[i].Unlimited {
				products[i].Remaining = 0
			}
		}
		return enc.Encode(map[string]any{"pools": out, "products": products})
	}
	return fmt.Errorf("unknown format %q (one of text, json)", format)
}

// WriteSeatHistory writes the seat history (`seats --history`): a row per
// run and pool, oldest first, then each pool's forecast. text is an
// aligned table, json {"history": [...], "forecasts": [...]}.
func WriteSeatHistory(w io.Writer, rows []store.SeatRow, seats []licensing.Status, format string) error {
	var forecasts []SeatsForecast
	for _, s := range seats {
		if s.Forecast != nil {
			forecasts = append(forecasts, SeatsForecast{Pool: s.Name, FillForecast: *s.Forecast})
		}
	}
	switch format {
	case "", "text":
		if len(rows) == 0 {
			_, err := fmt.Fprintln(w, "No seat history in this period: every sync records one row per pool.")
			return err
		}
		tw := texttable.New(w)
		fmt.Fprintln(tw, "AT\tRUN\tKIND\tNAME\tLIMIT\tUSED\tREMAINING\tQUEUED\tOVERAGE")
		for _, r := range rows {
			limit, remaining := strconv.Itoa(r.Limit), strconv.Itoa(r.Remaining)
			if r.Unlimited {
				limit, remaining = "unlimited", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\n", r.At.UTC().Format("2006-01-02 15:04"), r.RunID, r.Kind, r.Name,
				limit, r.Used, remaining, r.Queued, r.Overage)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, f := range forecasts {
			if _, err := fmt.Fprintf(w, "%s forecast: %s\n", f.Pool, f.Text); err != nil {
				return err
			}
		}
		return nil
	case "json":
		if forecasts == nil {
			forecasts = []SeatsForecast{}
		}
		if rows == nil {
			rows = []store.SeatRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"history": rows, "forecasts": forecasts})
	}
	return fmt.Errorf("unknown format %q (one of text, json)", format)
}

// SeatsForecast is one pool's forecast in `seats --history --format json`.
type SeatsForecast struct {
	Pool string `json:"pool"`
	licensing.FillForecast
}

// ProductLine says how many licences of a product are issued and queued:
// "product crm: issued 3 of 5, 1 queued".
func ProductLine(p licensing.ProductStatus) string {
	limit := strconv.Itoa(p.Limit)
	if p.Unlimited {
		limit = "unlimited"
	}
	line := fmt.Sprintf("product %s: issued %d of %s, %d queued", p.Name, p.Issued, limit, p.Queued)
	if p.Overage > 0 {
		line += fmt.Sprintf(", %d over the limit", p.Overage)
	}
	if p.Disabled {
		line += fmt.Sprintf(" (gives no new licence: licence flag %s is off or no licence is in force)", p.EnabledBy)
	}
	return line
}
