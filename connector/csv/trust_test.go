package csv

import (
	stdcsv "encoding/csv"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
)

// What the reader counts on when a row has a malformed quote: encoding/csv
// returns the fields finished before the error, not the broken one nor any
// after it; its Column is the byte position of the bad quote; and the
// reader has consumed the whole line, so InputOffset is at the next line.
func TestParseErrorRecord(t *testing.T) {
	tests := []struct {
		line   string
		rec    []string
		err    error
		column int
	}{
		{line: `E2,b,yes,5" screen`, rec: []string{"E2", "b", "yes"}, err: stdcsv.ErrBareQuote, column: 11},
		{line: `E2,"b"x,yes,x`, rec: []string{"E2"}, err: stdcsv.ErrQuote, column: 6},
		{line: `"E2"x,b,yes,x`, rec: nil, err: stdcsv.ErrQuote, column: 4},
		{line: `E2,b"c,yes,x`, rec: []string{"E2"}, err: stdcsv.ErrBareQuote, column: 5},
		{line: ` E2 , "b, c" , x`, rec: []string{"E2 "}, err: stdcsv.ErrQuote, column: 12}, // a space after a closing quote
		{line: `E2,"b, c",x"y,z`, rec: []string{"E2", "b, c"}, err: stdcsv.ErrBareQuote, column: 12},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r := stdcsv.NewReader(strings.NewReader(tt.line + "\nE3,c,yes,x\n"))
			r.FieldsPerRecord = -1
			r.ReuseRecord = true
			r.TrimLeadingSpace = true
			rec, err := r.Read()
			var pe *stdcsv.ParseError
			if !errors.As(err, &pe) || !errors.Is(pe.Err, tt.err) {
				t.Fatalf("Read error %v, want a ParseError for %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.rec, rec); diff != "" {
				t.Errorf("rec on a ParseError (-want +got):\n%s", diff)
			}
			if pe.StartLine != 1 || pe.Line != 1 || pe.Column != tt.column {
				t.Errorf("ParseError at line %d-%d column %d, want line 1 column %d", pe.StartLine, pe.Line, pe.Column, tt.column)
			}
			if got, want := r.InputOffset(), int64(len(tt.line)+1); got != want {
				t.Errorf("InputOffset %d after the bad line, want %d (the whole line read)", got, want)
			}
			if rec, err := r.Read(); err != nil || rec[0] != "E3" {
				t.Errorf("the next Read gives %q, %v; want the next line", rec, err)
			}
		})
	}
}

// A skip carries the external_id only when it can be trusted: the row's
// columns line up with the header and the cell itself is sound. The
// person of a trusted skip is left as they are; an untrusted one stops
// the run from taking anyone of the source as gone.
func TestSkipExternalID(t *testing.T) {
	tests := []struct {
		name    string
		header  string // default "external_id,username,enabled,note"
		row     string // line 2
		maxFld  int
		wantID  string
		wantWhy string // a part of the reason
	}{
		// A field too many or too few: the columns may be shifted, so
		// the external_id column may hold another column's value.
		{name: "extra field", row: "E2,b,yes,x,extra", wantWhy: `has 5 fields, the header has 4, so its columns may be shifted (its external_id column reads "E2")`},
		{name: "missing delimiter", row: "E2,b yes,x", wantWhy: "has 3 fields, the header has 4"},
		{name: "external_id not first, a delimiter too many before it", header: "username,external_id,enabled",
			row: "b,x,E2,yes", wantWhy: `has 4 fields, the header has 3, so its columns may be shifted (its external_id column reads "x")`},
		{name: "only the external_id", row: "E2", wantWhy: "has 1 fields, the header has 4"},

		// A malformed quote: the fields before it are read, the rest not.
		{name: "bare quote after the external_id", row: `E2,b,yes,5" screen`, wantID: "E2", wantWhy: `malformed quote in column "note"`},
		{name: "text after a closing quote", row: `E2,"b"x,yes,x`, wantID: "E2", wantWhy: `malformed quote in column "username" at position 6`},
		{name: "bare quote in the external_id", row: `E"2,b,yes,x`, wantWhy: `malformed quote in column "external_id"`},
		{name: "malformed quote in the external_id", row: `"E2"x,b,yes,x`, wantWhy: `malformed quote in column "external_id"`},
		{name: "bare quote before the external_id column", header: "username,external_id,enabled",
			row: `b"c,E2,yes`, wantWhy: `malformed quote in column "username"`},
		{name: "bare quote after it, and a delimiter too many before it", header: "username,external_id,enabled,note",
			row: `b,x,E2,yes,5" screen`, wantWhy: `malformed quote in column 5 at position 13: " inside an unquoted field (quote the field and double the ") (its external_id column reads "x")`},
		{name: "bare quote after it, and a delimiter too few before it", header: "username,title,external_id,enabled,note",
			row: `b x,E2,yes,5" screen`, wantWhy: `malformed quote in column "enabled" at position 13: " inside an unquoted field (quote the field and double the ") (its external_id column reads "yes")`},
		{name: "bare quote after it, and a delimiter too many after the quote", row: `E2,b,yes,5" screen,extra`, wantWhy: `malformed quote in column "note"`},
		// Counting every delimiter after the quote counts the one inside
		// a quoted field too: such a row is not trusted (the safe way).
		{name: "bare quote, then a quoted field with the delimiter", header: "external_id,username,note,display_name",
			row: `E2,b,5" screen,"Doe, John"`, wantWhy: `malformed quote in column "note"`},
		{name: "bare quote, then a quoted field", header: "external_id,username,note,display_name",
			row: `E2,b,5" screen,"Doe John"`, wantID: "E2", wantWhy: `malformed quote in column "note"`},
		{name: "quote error with the delimiter", row: ` E2 ,"b"x;"y",yes,x`, wantID: "E2", wantWhy: `malformed quote in column "username"`},

		// A well-formed row rejected for a value: its external_id is sound.
		{name: "enabled 1.0", row: "E2,b,1.0,x", wantID: "E2", wantWhy: `invalid enabled value "1.0"`},
		{name: "invalid UTF-8 in another column", row: "E2,M\xfcller,yes,x", wantID: "E2", wantWhy: `invalid UTF-8 in column "username"`},
		{name: "invalid UTF-8 in the external_id", row: "E\xff,b,yes,x", wantWhy: `invalid UTF-8 in column "external_id"`},
		{name: "a cell over max_field_bytes", maxFld: 8, row: "E2,b,yes,123456789", wantID: "E2",
			wantWhy: `column "note" is 9 bytes long, more than max_field_bytes (8)`},
		{name: "the external_id over max_field_bytes", maxFld: 8, row: "E23456789,b,yes,x",
			wantWhy: `column "external_id" is 9 bytes long, more than max_field_bytes (8)`},
		{name: "a long cell in a row with a field too many", maxFld: 8, row: "E2,b,yes,123456789,x",
			wantWhy: "has 5 fields, the header has 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := tt.header
			if header == "" {
				header = "external_id,username,enabled,note"
			}
			got, _, err := pull(t, config.Source{MaxFieldBytes: tt.maxFld}, header+"\n"+tt.row+"\n")
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if len(got.IDs) != 0 || len(got.Skips) != 1 {
				t.Fatalf("pulled %+v, want one skip", got)
			}
			sk := got.Skips[0]
			if sk.ExternalID != tt.wantID || sk.Where != "line 2" {
				t.Errorf("skip ExternalID %q at %q, want %q at line 2 (reason: %s)", sk.ExternalID, sk.Where, tt.wantID, sk.Reason)
			}
			if !strings.Contains(sk.Reason, tt.wantWhy) {
				t.Errorf("skip reason\n %s\ndoes not say\n %s", sk.Reason, tt.wantWhy)
			}
		})
	}
}

// A reason says which value is wrong; it never copies a whole long cell
// into the report.
func TestSkipReasonClipsValues(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got, _, err := pull(t, config.Source{}, "external_id,username,enabled\nE1,a,"+long+"\n"+
		strings.Repeat("X", 300)+",b,yes\n"+strings.Repeat("X", 300)+",c,yes\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []connector.Skip{
		{ExternalID: "E1", Where: "line 2", Reason: `invalid enabled value "` + strings.Repeat("é", 32) +
			`"... (200 bytes) in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
		{ExternalID: strings.Repeat("X", 300), Where: "line 4", Reason: `duplicate external_id "` + strings.Repeat("X", 64) +
			`"... (300 bytes) (first on line 3)`},
	}
	if diff := cmp.Diff(want, got.Skips); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	for _, v := range []string{"", "x", strings.Repeat("a", clipTo), "\xff" + strings.Repeat("a", 100), strings.Repeat("€", 30)} {
		if c := clip(v); len(c) > 2*clipTo+32 {
			t.Errorf("clip(%q) = %s is too long", v, c)
		}
	}
}
