// Package csv is the connector for HR exports in CSV files (`type: csv`).
//
// The first non-empty row is the header. Columns are found by name,
// case-insensitively and ignoring surrounding spaces; a UTF-8 byte order
// mark is stripped. `mapping` maps identity fields to column names; a field
// it does not name is read from a column with the field's own name when the
// header has one. external_id and username are required. Every column no
// field uses is passed on in Identity.Attributes under its header name.
//
// The file is read row by row and never held in memory. A row that cannot
// become an identity (wrong number of fields, a malformed quote, invalid
// UTF-8, a cell longer than max_field_bytes, an empty or duplicate
// external_id, an invalid enabled value) is reported through skip with its
// line number and the pull goes on. Empty
// lines, and rows whose fields are all blank (the ";;;;" rows spreadsheets
// leave behind), are ignored.
//
// A skip carries the row's external_id only when it can be trusted: the
// planner leaves that person's profile as it is, and takes a skip without
// one to mean that anybody of the source may be in it, so that nobody is
// taken as gone in that run. A row with a field too many or too few never
// has one, as its columns may be shifted. A row with a malformed quote has
// one when the external_id column comes before the broken field and the
// delimiters after the quote make up the header's number of fields. A
// well-formed row rejected for a value has one when the external_id cell
// itself is valid UTF-8 and within max_field_bytes. A reason quotes at most 64 bytes of a value.
//
// The pull fails, rather than lose rows that would look like people
// leaving:
//   - when a row that cannot be read, or the header, runs over several
//     physical lines: that is the mark of a quote that was opened and not
//     closed, which swallows the rows after it;
//   - when the file looks cut off: a file with no final line break is
//     fine when its last row is whole, but not when that row has fewer
//     fields than the header or a malformed quote; nor is a quote still
//     open at the end of the file, or a file whose size changed while it
//     was read (still being written);
//   - when a line, or a record over several lines, is longer than
//     max(1 MiB, 4 × max_field_bytes × the header's columns): no row of
//     cells within the limit can be, and the read stops there instead of
//     taking the rest of the file into memory.
package csv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// source reads one configured CSV file. It holds configuration only, so one
// value can be pulled many times, also concurrently.
type source struct {
	name  string
	path  string
	delim rune
	// columns is the configured column name per field, "" when the field
	// is not mapped and falls back to a column with its own name.
	columns [model.NumFields]string
	// maxField is the longest cell, in bytes (max_field_bytes).
	maxField int
	log      *zap.Logger
}

var _ connector.Source = (*source)(nil)

// Open builds the csv source described by cfg (it matches connector.Opener).
// It checks path, delimiter and mapping, reporting every problem at once,
// and does no I/O: the file is opened by each Pull.
func Open(cfg config.Source, log *zap.Logger) (connector.Source, error) {
	set, ok := cfg.Settings.(*Settings)
	if !ok {
		return nil, fmt.Errorf("source %s: no csv settings (%T)", cfg.Name, cfg.Settings)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &source{
		name:     cfg.Name,
		path:     set.Path,
		delim:    ',',
		maxField: cfg.MaxFieldBytes,
		log:      log,
	}
	var problems []string
	switch {
	case s.maxField == 0: // not set: opened without the loader's defaults
		s.maxField = config.DefaultMaxFieldBytes
	case s.maxField < 0 || s.maxField > config.MaxMaxFieldBytes:
		problems = append(problems, fmt.Sprintf("max_field_bytes: %d is not between 1 and %d", s.maxField, config.MaxMaxFieldBytes))
	}
	if strings.TrimSpace(set.Path) == "" {
		problems = append(problems, "path: required (the CSV file to read)")
	}
	if set.Delimiter != "" {
		d, problem := parseDelimiter(set.Delimiter)
		if problem != "" {
			problems = append(problems, problem)
		}
		s.delim = d
	}
	mapped, mproblems := connector.ParseMapping(cfg.Mapping)
	problems = append(problems, mproblems...)
	for f, col := range mapped {
		if col != "" {
			s.columns[f] = col
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("source %s: %s", cfg.Name, strings.Join(problems, "; "))
	}
	return s, nil
}

// parseDelimiter checks the delimiter option: exactly one character that
// encoding/csv accepts.
func parseDelimiter(d string) (rune, string) {
	if d == `\t` {
		return 0, `delimiter: "\t" is two characters; for a tab write "\t" in double quotes`
	}
	r, size := utf8.DecodeRuneInString(d)
	switch {
	case size != len(d):
		return 0, fmt.Sprintf("delimiter: %q must be one character", d)
	case r == utf8.RuneError, r == 0, r == '"', r == '\r', r == '\n':
		return 0, fmt.Sprintf("delimiter: %q cannot be used as a delimiter", d)
	}
	return r, ""
}

// Pull streams every identity in the file to emit. See the package
// documentation for what is skipped and what fails the pull.
func (s *source) Pull(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) error {
	f, fi, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.run(ctx, f, fi, emit, skip)
	return err
}

// open opens the file and says what it was when opened.
func (s *source) open(ctx context.Context) (*os.File, fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.path, err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		// *fs.PathError already reads "open /srv/hr/export.csv: ...".
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", s.path, err)
	} else if fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: is a directory, not a CSV file", s.path)
	}
	return f, fi, nil
}

// run reads f, which was fi when opened, to its end, once.
func (s *source) run(ctx context.Context, f *os.File, fi fs.FileInfo, emit func(model.Identity) error, skip func(connector.Skip)) (stats, error) {
	start := time.Now()
	st, err := s.read(ctx, f, emit, skip)
	if err != nil {
		return st, err
	}
	// A file still being written can end in a row that looks whole but
	// is not (cut in its last field): its size moves while it is read.
	if now, err := f.Stat(); err == nil && fi.Mode().IsRegular() && (now.Size() != fi.Size() || st.bytes != fi.Size()) {
		return st, fmt.Errorf("%s: the file changed while it was read (%d bytes when opened, %d read, %d now): "+
			"it looks like it is still being written; the next run reads it again", s.path, fi.Size(), st.bytes, now.Size())
	}
	s.log.Debug("csv file read",
		zap.String("path", s.path),
		zap.Int("rows", st.rows),
		zap.Int("identities", st.identities),
		zap.Int("skipped", st.skipped),
		zap.Int("blank", st.blank),
		zap.Duration("took", time.Since(start)))
	return st, nil
}
