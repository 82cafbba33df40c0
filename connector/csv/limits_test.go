package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// A cell longer than max_field_bytes skips its row; the reason names the
// column, the size, the limit and the setting, never the value.
func TestMaxFieldBytes(t *testing.T) {
	const header = "external_id,username,note\n"
	tests := []struct {
		name    string
		max     int // 0: the default, 4096
		content string
		wantIDs []string
		want    []connector.Skip
	}{
		{
			name:    "at the default limit",
			content: "E1,a," + strings.Repeat("x", 4096) + "\n",
			wantIDs: []string{"E1"},
		},
		{
			name:    "over the default limit",
			content: "E1,a," + strings.Repeat("x", 4097) + "\nE2,b,x\n",
			wantIDs: []string{"E2"},
			want:    []connector.Skip{{ExternalID: "E1", Where: "line 2", Reason: `column "note" is 4097 bytes long, more than max_field_bytes (4096)`}},
		},
		{
			name:    "the value counts, not its quoting",
			max:     4,
			content: "E1,a,\"\"\"\"\"\"\"\"\"\"\n\"E2\",\"b\",\"\"\"\"\"\"\"\"\"\"\"\"\n",
			wantIDs: []string{"E1"},
			want:    []connector.Skip{{ExternalID: "E2", Where: "line 3", Reason: `column "note" is 5 bytes long, more than max_field_bytes (4)`}},
		},
		{
			name:    "a multi-line cell",
			max:     8,
			content: "E1,a,\"123\n5678\"\nE2,b,\"1234\n5678\"\n",
			wantIDs: []string{"E1"},
			want:    []connector.Skip{{ExternalID: "E2", Where: "line 4", Reason: `column "note" is 9 bytes long, more than max_field_bytes (8)`}},
		},
		{
			name:    "the username",
			max:     8,
			content: "E1,abcdefghi,x\n",
			want:    []connector.Skip{{ExternalID: "E1", Where: "line 2", Reason: `column "username" is 9 bytes long, more than max_field_bytes (8)`}},
		},
		{
			name:    "the external_id: not trusted",
			max:     8,
			content: "E12345678,a,x\n",
			want:    []connector.Skip{{Where: "line 2", Reason: `column "external_id" is 9 bytes long, more than max_field_bytes (8)`}},
		},
		{
			name:    "trailing spaces count: the cell is what is limited",
			max:     4,
			content: "E1,a,x    \n",
			want:    []connector.Skip{{ExternalID: "E1", Where: "line 2", Reason: `column "note" is 5 bytes long, more than max_field_bytes (4)`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := pull(t, config.Source{MaxFieldBytes: tt.max}, header+tt.content)
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			checkIDs(t, got, tt.wantIDs)
			if diff := cmp.Diff(tt.want, got.Skips); diff != "" {
				t.Errorf("skips (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenMaxFieldBytes(t *testing.T) {
	for _, n := range []int{-1, config.MaxMaxFieldBytes + 1} {
		_, err := Open(config.Source{Name: "hr", Type: "csv", MaxFieldBytes: n, Settings: &Settings{Path: "x.csv"}}, nil)
		want := fmt.Sprintf("source hr: max_field_bytes: %d is not between 1 and 1048576", n)
		if errString(err) != want {
			t.Errorf("Open with max_field_bytes %d: %v, want %s", n, err, want)
		}
	}
	if got := mustOpen(t, config.Source{}).maxField; got != config.DefaultMaxFieldBytes {
		t.Errorf("max_field_bytes not set: %d, want the default %d", got, config.DefaultMaxFieldBytes)
	}
}

// endless is a file of a given start followed by n bytes made by fill,
// made up as it is read, counting what was read.
type endless struct {
	start string
	fill  func(i int64) byte
	n     int64
	off   int64
}

func (e *endless) Read(p []byte) (int, error) {
	total := int64(len(e.start)) + e.n
	if e.off >= total {
		return 0, io.EOF
	}
	k := 0
	for ; k < len(p) && e.off < total; k++ {
		if e.off < int64(len(e.start)) {
			p[k] = e.start[e.off]
		} else {
			p[k] = e.fill(e.off - int64(len(e.start)))
		}
		e.off++
	}
	return k, nil
}

func (e *endless) ReadAt([]byte, int64) (int, error) { return 0, errors.New("not here") }

// A line or a record longer than any row of cells within max_field_bytes
// can be fails the pull, after reading little more than the limit: a
// 100 MB line is never read into memory.
func TestPullLineLimit(t *testing.T) {
	const limit = 1 << 20 // 2 columns × 4096 × 4 is less than 1 MiB
	tests := []struct {
		name string
		in   *endless
		want string
	}{
		{
			name: "a 100 MB line",
			in:   &endless{start: "external_id,username\nE1,a\nE2,", fill: func(int64) byte { return 'x' }, n: 100 << 20},
			want: "export.csv: line 3 is longer than 1048576 bytes, the most one row may take " +
				"(4 × max_field_bytes × the header's columns, at least 1 MiB); the file cannot be read reliably",
		},
		{
			name: "a 100 MB header",
			in:   &endless{start: "external_id,username,", fill: func(int64) byte { return 'x' }, n: 100 << 20},
			want: "export.csv: line 1 is longer than 1048576 bytes, the most one row may take " +
				"(4 × max_field_bytes × the header's columns, at least 1 MiB); the file cannot be read reliably",
		},
		{
			name: "a quote not closed before 100 MB of short lines",
			in: &endless{start: "external_id,username\nE1,a\nE2,\"b\n", n: 100 << 20, fill: func(i int64) byte {
				return "E3,c\n"[i%5]
			}},
			want: "export.csv: line 3: the record starting here runs on past line ",
		},
		{
			name: "a quote not closed in the first field",
			in: &endless{start: "external_id,username\nE1,a\n\"E2,b\n", n: 100 << 20, fill: func(i int64) byte {
				return "E3,c\n"[i%5]
			}},
			want: "export.csv: line 3: the record starting here runs on past line ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mustOpen(t, config.Source{})
			_, err := src.read(context.Background(), tt.in, func(model.Identity) error { return nil }, func(connector.Skip) {})
			if !strings.HasPrefix(errString(err), tt.want) {
				t.Errorf("read error\n got: %v\nwant: %s...", err, tt.want)
			}
			if tt.in.off > limit+2*bufSize+int64(len(tt.in.start)) {
				t.Errorf("read %d bytes before it stopped, want at most the limit and two buffers", tt.in.off)
			}
		})
	}
}

// The bound grows with the header: a wide row of cells within the limit
// is read whole, however long its line.
func TestPullWideRow(t *testing.T) {
	const cols = 300
	var head, row []string
	for i := range cols {
		head = append(head, fmt.Sprintf("c%d", i))
		row = append(row, strings.Repeat("v", 4000))
	}
	head[0], head[1], row[0], row[1] = "external_id", "username", "E1", "a"
	line := strings.Join(row, ",")
	if len(line) <= 1<<20 {
		t.Fatalf("the row is %d bytes, want more than 1 MiB", len(line))
	}
	got, _, err := pull(t, config.Source{}, strings.Join(head, ",")+"\n"+line+"\n")
	if err != nil || len(got.IDs) != 1 || len(got.IDs[0].Attributes) != cols-2 {
		t.Fatalf("Pull: %d identities, %v", len(got.IDs), err)
	}
	if rowLimit(cols, 4096) != 4*cols*4096 || rowLimit(2, 4096) != 1<<20 {
		t.Errorf("rowLimit(%d, 4096) = %d, rowLimit(2, 4096) = %d", cols, rowLimit(cols, 4096), rowLimit(2, 4096))
	}
}
