package csv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// ctxEvery is how many rows are read between two looks at the context.
const ctxEvery = 256

// stats counts what one read saw, for the log and for Check.
type stats struct {
	rows       int // records after the header, good or bad, blank ones included
	identities int
	skipped    int
	blank      int
	bytes      int64  // read from the file, to its end
	sha256     []byte // of those bytes, when the read got to the end
}

// layout is where each field sits in one file, resolved from its header.
type layout struct {
	header []string             // column names as written, trimmed
	cols   [model.NumFields]int // column index per field, -1 when it has none
	attrs  []attributeCol       // the columns no field uses
	mapped []int                // the columns some field uses, each once
}

type attributeCol struct {
	index int
	name  string
}

// column names column i for messages.
func (l *layout) column(i int) string {
	if i < len(l.header) && l.header[i] != "" {
		return strconv.Quote(l.header[i])
	}
	return strconv.Itoa(i + 1)
}

// idCell is the external_id cell of rec as it stands, "" when rec does
// not reach its column.
func (l *layout) idCell(rec []string) string {
	if i := l.cols[model.FieldExternalID]; i < len(rec) {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// trustedID is the external_id of a row whose columns are known to line
// up with the header, when the cell can be trusted as it is: valid UTF-8
// and within max_field_bytes. A row whose columns may be shifted (a field
// too many or too few) must not be given one, because the value in the
// external_id column may be another column's: that person would be left
// alone while the real one looks gone.
func (l *layout) trustedID(rec []string, maxField int) string {
	i := l.cols[model.FieldExternalID]
	if i >= len(rec) || len(rec[i]) > maxField || !utf8.ValidString(rec[i]) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// hint names what the external_id column of a row that cannot be trusted
// reads, for a person to look for; "" when it reads nothing.
func (l *layout) hint(rec []string) string {
	if id := l.idCell(rec); id != "" {
		return " (its external_id column reads " + clip(id) + ")"
	}
	return ""
}

// read streams the identities in in (the file's content) to emit.
func (s *source) read(ctx context.Context, in file, emit func(model.Identity) error, skip func(connector.Skip)) (stats, error) {
	var st stats
	t := &tracker{r: in, limit: rowLimit(1, s.maxField), sum: sha256.New()}
	br := bufio.NewReaderSize(t, bufSize)
	head, err := br.Peek(3)
	if err != nil && !errors.Is(err, io.EOF) {
		return st, s.inputErr(t, err, 1)
	}
	var bom int64 // the parser's offsets start after it
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		_, _ = br.Discard(3) // cannot fail: the bytes are buffered
		bom = 3
	case bytes.HasPrefix(head, []byte("\xff\xfe")), bytes.HasPrefix(head, []byte("\xfe\xff")):
		return st, fmt.Errorf("%s: the file is UTF-16 encoded; export it as UTF-8 CSV", s.path)
	}

	r := stdcsv.NewReader(br)
	r.Comma = s.delim
	r.FieldsPerRecord = -1 // counted here, to say how many fields a row has
	r.ReuseRecord = true
	// Dropping spaces before a field lets `a, "b, c"` parse as two fields;
	// not when the delimiter is itself white space (a tab).
	r.TrimLeadingSpace = !unicode.IsSpace(s.delim)

	rec, err := r.Read()
	if t.err != nil {
		return st, s.inputErr(t, err, 1)
	}
	if errors.Is(err, io.EOF) {
		return st, fmt.Errorf("%s: the file is empty, it has no header row", s.path)
	}
	if err != nil {
		var pe *stdcsv.ParseError
		if errors.As(err, &pe) {
			return st, fmt.Errorf("%s: header: %w", s.path, err)
		}
		return st, s.readErr(err)
	}
	headerLine, _ := r.FieldPos(0)
	if end := lastLine(headerLine, rec); end > headerLine {
		// No column name has a line break: a quote opened in the header
		// has taken in the first rows.
		return st, fmt.Errorf("%s: header: the header starting on line %d runs on to line %d in a quoted column name; "+
			"a quote is probably not closed and has swallowed the rows after it, so the file cannot be read reliably",
			s.path, headerLine, end)
	}
	lay, err := s.resolve(rec)
	if err != nil {
		return st, err
	}
	t.limit = rowLimit(len(lay.header), s.maxField)

	// seen holds the line of every external_id met so far.
	seen := make(map[string]int)
	report := func(sk connector.Skip) {
		st.skipped++
		skip(sk)
	}
	// next is the line after the last record read: where the next one
	// starts, unless empty lines come first.
	next := lastLine(headerLine, rec) + 1
	for {
		start := r.InputOffset()
		t.rowStart = bom + start
		rec, err := r.Read()
		if t.err != nil {
			return st, s.inputErr(t, err, s.startLine(r, rec, err, next))
		}
		if errors.Is(err, io.EOF) {
			st.bytes = t.read
			st.sha256 = t.sum.Sum(nil)
			return st, nil
		}
		st.rows++
		if st.rows%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("%s: stopped after %d rows: %w", s.path, st.rows, err)
			}
		}
		// This record is the file's last and the file does not end with a
		// line break: if the record is not whole, the file was cut.
		cut := t.eof && br.Buffered() == 0 && !t.endsWithNewline()
		if err != nil {
			var pe *stdcsv.ParseError
			if !errors.As(err, &pe) {
				return st, s.readErr(err)
			}
			next = pe.Line + 1
			switch {
			case cut:
				return st, s.cutOff(pe.StartLine, "this last record has a malformed quote on line "+strconv.Itoa(pe.Line))
			case pe.Line > pe.StartLine:
				return st, s.swallowed(pe.StartLine, pe.Line, fmt.Sprintf("has a malformed quote on line %d", pe.Line))
			}
			raw := rawLine(in, bom+start, bom+r.InputOffset(), t.limit)
			if errors.Is(pe.Err, stdcsv.ErrQuote) && pe.Column > len(raw) {
				// A quote still open at the end of its line would have
				// run on to the next one: there is none.
				return st, fmt.Errorf("%s: line %d: a quote opened on this line is not closed before the end of the file: "+
					"the file looks cut off (is it still being written, or was it copied incompletely?), or the quote is not closed",
					s.path, pe.StartLine)
			}
			sk := connector.Skip{
				ExternalID: s.idAfterQuote(lay, rec, raw, pe),
				Where:      where(pe.StartLine),
				Reason:     quoteReason(pe, lay.column(len(rec))),
			}
			if sk.ExternalID == "" {
				sk.Reason += lay.hint(rec)
			}
			report(sk)
			continue
		}

		line, _ := r.FieldPos(0)
		next = lastLine(line, rec) + 1
		if cut && len(rec) < len(lay.header) {
			return st, s.cutOff(line, fmt.Sprintf("this last row has %d fields, the header has %d", len(rec), len(lay.header)))
		}
		if blank(rec) {
			st.blank++
			continue
		}
		if len(rec) != len(lay.header) {
			what := fmt.Sprintf("has %d fields, the header has %d", len(rec), len(lay.header))
			if last := lastLine(line, rec); last > line {
				return st, s.swallowed(line, last, what)
			}
			report(connector.Skip{Where: where(line), Reason: what + ", so its columns may be shifted" + lay.hint(rec)})
			continue
		}
		for _, i := range lay.mapped {
			if strings.Contains(rec[i], "\n") {
				return st, s.swallowed(line, lastLine(line, rec), fmt.Sprintf("column %s has a line break", lay.column(i)))
			}
		}
		if i := longCell(rec, s.maxField); i >= 0 {
			report(connector.Skip{
				ExternalID: lay.trustedID(rec, s.maxField),
				Where:      where(line),
				Reason: fmt.Sprintf("column %s is %d bytes long, more than max_field_bytes (%d)",
					lay.column(i), len(rec[i]), s.maxField),
			})
			continue
		}
		if i := invalidUTF8(rec); i >= 0 {
			report(connector.Skip{
				ExternalID: lay.trustedID(rec, s.maxField),
				Where:      where(line),
				Reason:     fmt.Sprintf("invalid UTF-8 in column %s (export the file as UTF-8)", lay.column(i)),
			})
			continue
		}

		// The first row with an external_id claims it, even when that row
		// is skipped: two rows for one person cannot both be right.
		id, reason := lay.identity(rec)
		if id.ExternalID != "" {
			if first, dup := seen[id.ExternalID]; dup {
				reason = fmt.Sprintf("duplicate external_id %s (first on line %d)", clip(id.ExternalID), first)
			} else {
				// Clone: the field pins the whole row's memory.
				seen[strings.Clone(id.ExternalID)] = line
			}
		}
		if reason != "" {
			report(connector.Skip{ExternalID: id.ExternalID, Where: where(line), Reason: reason})
			continue
		}
		id.Where = where(line)
		if err := emit(id); err != nil {
			return st, err
		}
		st.identities++
	}
}

// idAfterQuote is the external_id of a row that has a malformed quote,
// when it can be trusted. The parser stops at the quote and returns the
// fields before it (rec), so the external_id is there only when its column
// comes before the broken field. Whether the row has the right number of
// fields is not in rec, and an extra or missing delimiter before the
// external_id column would shift it. So the row's line (raw) is looked at
// again: the external_id is trusted only when the fields before the quote,
// the broken one and one more per delimiter after the quote make exactly
// as many as the header has. Counting every delimiter after the quote can
// only count too many (a quoted "Doe, John" later on), which trusts less,
// never a shifted row.
func (s *source) idAfterQuote(lay *layout, rec []string, raw []byte, pe *stdcsv.ParseError) string {
	if lay.cols[model.FieldExternalID] >= len(rec) || pe.Column < 1 || pe.Column > len(raw) || raw[pe.Column-1] != '"' {
		return ""
	}
	if len(rec)+1+bytes.Count(raw[pe.Column:], []byte(string(s.delim))) != len(lay.header) {
		return ""
	}
	return lay.trustedID(rec, s.maxField)
}

// rawLine is the last physical line, without its line break, of what the
// parser read between the file offsets from and to: the line of a record
// that failed on it. It is nil when it cannot be read again. Only the last
// limit bytes are read: a line is never longer (the tracker sees to it).
func rawLine(in io.ReaderAt, from, to, limit int64) []byte {
	from = max(from, to-limit-2)
	if to <= from {
		return nil
	}
	b := make([]byte, to-from)
	if n, err := in.ReadAt(b, from); n < len(b) && err != nil {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b[bytes.LastIndexByte(b, '\n')+1:]
}

// startLine is the line the record the parser stopped in starts on, as
// best known: the parser's own word when it has one.
func (s *source) startLine(r *stdcsv.Reader, rec []string, err error, next int) int {
	var pe *stdcsv.ParseError
	if errors.As(err, &pe) {
		return pe.StartLine
	}
	if len(rec) > 0 {
		line, _ := r.FieldPos(0)
		return line
	}
	return next
}

// inputErr is the error for a read that stopped on err; start is the
// line the record being read starts on.
func (s *source) inputErr(t *tracker, err error, start int) error {
	switch {
	case t.err == nil:
		return s.readErr(err)
	case t.err.row:
		return fmt.Errorf("%s: line %d: the record starting here runs on past line %d and is longer than %d bytes, "+
			"the most one row may take (4 × max_field_bytes × the header's columns, at least 1 MiB); "+
			"a quote is probably not closed and has swallowed the rows after it, so the file cannot be read reliably",
			s.path, start, t.err.line, t.limit)
	default:
		return fmt.Errorf("%s: line %d is longer than %d bytes, the most one row may take "+
			"(4 × max_field_bytes × the header's columns, at least 1 MiB); the file cannot be read reliably",
			s.path, t.err.line, t.limit)
	}
}

// cutOff is the error for a file whose last record is not whole and that
// does not end with a line break: it was cut, and the rows after the cut
// would look like people leaving.
func (s *source) cutOff(line int, what string) error {
	return fmt.Errorf("%s: line %d: %s, and the file ends there without a line break: "+
		"the file looks cut off (is it still being written, or was it copied incompletely?)", s.path, line, what)
}

// identity builds the identity of one well-formed row, or says why it
// cannot. The external_id is filled in either way when the row has one.
func (l *layout) identity(rec []string) (model.Identity, string) {
	get := func(f int) string {
		if i := l.cols[f]; i >= 0 {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	id := model.Identity{
		ExternalID:  get(model.FieldExternalID),
		Username:    get(model.FieldUsername),
		Email:       get(model.FieldEmail),
		GivenName:   get(model.FieldGivenName),
		FamilyName:  get(model.FieldFamilyName),
		DisplayName: get(model.FieldDisplayName),
		Title:       get(model.FieldTitle),
		Department:  get(model.FieldDepartment),
		Groups:      splitGroups(get(model.FieldGroups)),
		Enabled:     true,
	}
	if id.ExternalID == "" {
		return id, fmt.Sprintf("empty external_id (column %s)", l.column(l.cols[model.FieldExternalID]))
	}
	if i := l.cols[model.FieldEnabled]; i >= 0 {
		v := get(model.FieldEnabled)
		enabled, ok := parseEnabled(v)
		if !ok {
			return id, fmt.Sprintf("invalid enabled value %s in column %s (use yes/no, true/false, 1/0, active/inactive or y/n)",
				clip(v), l.column(i))
		}
		id.Enabled = enabled
	}
	if len(l.attrs) > 0 {
		id.Attributes = make(map[string]string, len(l.attrs))
		for _, a := range l.attrs {
			id.Attributes[a.name] = strings.TrimSpace(rec[a.index])
		}
	}
	return id, ""
}

// resolve finds each field's column in the header, reporting every
// problem at once.
// delimiterHint suggests the delimiter when the header reads as one
// column that holds another common delimiter: an export written with ";"
// read with the default ",".
func (s *source) delimiterHint(header []string) string {
	if len(header) != 1 {
		return ""
	}
	for _, d := range []string{";", ",", "\t", "|"} {
		if d != string(s.delim) && strings.Count(header[0], d) > 0 {
			q := strconv.Quote(d)
			return fmt.Sprintf(" (did you mean delimiter: %s?)", q)
		}
	}
	return ""
}

func (s *source) resolve(header []string) (*layout, error) {
	l := &layout{header: make([]string, len(header))}
	for i, h := range header {
		l.header[i] = strings.TrimSpace(h)
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("%s: header: column %d is not valid UTF-8; export the file as UTF-8 CSV", s.path, i+1)
		}
	}
	find := func(name string) []int {
		var found []int
		for i, h := range l.header {
			if strings.EqualFold(h, name) {
				found = append(found, i)
			}
		}
		return found
	}
	used := make([]bool, len(header))
	var problems []string
	for f := range model.NumFields {
		name, explicit := s.columns[f], true
		if name == "" {
			name, explicit = model.FieldNames()[f], false
		}
		required := f == model.FieldExternalID || f == model.FieldUsername
		found := find(name)
		l.cols[f] = -1
		switch {
		case len(found) == 1:
			l.cols[f] = found[0]
			if !used[found[0]] {
				used[found[0]] = true
				l.mapped = append(l.mapped, found[0])
			}
		case len(found) > 1 && (explicit || required):
			problems = append(problems, fmt.Sprintf("column %q for %s appears %d times", name, model.FieldNames()[f], len(found)))
		case len(found) > 1:
			s.log.Warn("csv header names a column more than once; it is not read as the identity field of that name",
				zap.String("path", s.path), zap.String("column", name))
		case explicit:
			problems = append(problems, fmt.Sprintf("mapping.%s: no column %q", model.FieldNames()[f], name))
		case required:
			problems = append(problems, fmt.Sprintf("no column %q for %s (name its column with mapping.%s)",
				name, model.FieldNames()[f], model.FieldNames()[f]))
		}
	}
	if len(problems) > 0 {
		quoted := make([]string, len(l.header))
		for i, h := range l.header {
			quoted[i] = strconv.Quote(h)
		}
		return nil, fmt.Errorf("%s: header: %s; the header has %d columns: %s%s",
			s.path, strings.Join(problems, "; "), len(l.header), strings.Join(quoted, ", "), s.delimiterHint(l.header))
	}
	names := make(map[string]bool)
	for i, h := range l.header {
		if used[i] || h == "" {
			continue
		}
		if names[h] {
			s.log.Warn("csv header names a column more than once; only the first is kept as an attribute",
				zap.String("path", s.path), zap.String("column", h))
			continue
		}
		names[h] = true
		l.attrs = append(l.attrs, attributeCol{index: i, name: h})
	}
	return l, nil
}

// swallowed is the error for a bad record that spans several lines: a
// quote was most likely opened and not closed, and the rows it took in
// cannot be told apart, so the pull fails rather than lose them.
func (s *source) swallowed(start, end int, what string) error {
	return fmt.Errorf("%s: line %d: the record starting here runs on to line %d and %s; "+
		"a quote is probably not closed and has swallowed the rows after it, so the file cannot be read reliably",
		s.path, start, end, what)
}

// readErr wraps an I/O error so that it names the file once.
func (s *source) readErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err // "read /srv/hr/export.csv: ..."
	}
	return fmt.Errorf("read %s: %w", s.path, err)
}

func quoteReason(pe *stdcsv.ParseError, column string) string {
	var what string
	switch {
	case errors.Is(pe.Err, stdcsv.ErrBareQuote):
		what = `" inside an unquoted field (quote the field and double the ")`
	case errors.Is(pe.Err, stdcsv.ErrQuote):
		what = `a quoted field must end with " before the delimiter or the line end, and a " inside it must be doubled`
	default:
		what = pe.Err.Error()
	}
	return fmt.Sprintf("malformed quote in column %s at position %d: %s", column, pe.Column, what)
}

// lastLine is the physical line a record starting on line first ends on.
// Line breaks can only be inside quoted fields, where the parser keeps
// them (as "\n").
func lastLine(first int, rec []string) int {
	for _, f := range rec {
		first += strings.Count(f, "\n")
	}
	return first
}

func where(line int) string { return "line " + strconv.Itoa(line) }

// blank reports whether every field is empty or white space.
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// longCell returns the index of the first field longer than maxField
// bytes, or -1.
func longCell(rec []string, maxField int) int {
	for i, f := range rec {
		if len(f) > maxField {
			return i
		}
	}
	return -1
}

// clipTo is the most bytes of a value a skip reason quotes.
const clipTo = 64

// clip quotes v for a message, cut to its first clipTo bytes (at a
// character boundary) with its length when it is longer: a reason says
// which value is wrong, it does not copy a whole cell into the report.
func clip(v string) string {
	if len(v) <= clipTo {
		return strconv.Quote(v)
	}
	n := clipTo
	for n > clipTo-utf8.UTFMax && !utf8.RuneStart(v[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(v[:n]), len(v))
}

// invalidUTF8 returns the index of the first field that is not valid
// UTF-8, or -1.
func invalidUTF8(rec []string) int {
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return i
		}
	}
	return -1
}

// splitGroups splits a "|"-separated list, trimming each name and dropping
// empty ones.
func splitGroups(v string) []string {
	if v == "" {
		return nil
	}
	groups := make([]string, 0, strings.Count(v, "|")+1)
	for g := range strings.SplitSeq(v, "|") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	return groups
}

// parseEnabled reads an enabled value: yes/no, true/false, 1/0,
// active/inactive, y/n, in any case. v is already trimmed.
func parseEnabled(v string) (enabled, ok bool) {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "active":
		return true, true
	case "no", "n", "false", "0", "inactive":
		return false, true
	}
	return false, false
}
