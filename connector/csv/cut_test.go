package csv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

const cutTail = ", and the file ends there without a line break: " +
	"the file looks cut off (is it still being written, or was it copied incompletely?)"

// A file with no final newline is fine when its last row is whole. A last
// row that is not whole, and no line break after it, means the file was
// cut: the pull fails, as the rows after the cut would look like people
// leaving.
func TestPullCutOff(t *testing.T) {
	const header = "external_id,username,enabled,note\n"
	tests := []struct {
		name    string
		content string // after header, which is line 1
		wantIDs []string
		wantErr string // after "PATH: "
	}{
		{name: "whole last row, no final newline", content: "E1,a,yes,x\nE2,b,no,y", wantIDs: []string{"E1", "E2"}},
		{name: "whole quoted last field, no final newline", content: "E1,a,yes,x\nE2,b,no,\"y, z\"", wantIDs: []string{"E1", "E2"}},
		{name: "empty last field, no final newline", content: "E1,a,yes,x\nE2,b,no,", wantIDs: []string{"E1", "E2"}},
		{name: "CRLF", content: "E1,a,yes,x\r\nE2,b,no,y\r\n", wantIDs: []string{"E1", "E2"}},
		{name: "CRLF, no final line break", content: "E1,a,yes,x\r\nE2,b,no,y", wantIDs: []string{"E1", "E2"}},
		{name: "CRLF, cut between CR and LF", content: "E1,a,yes,x\r\nE2,b,no,y\r", wantIDs: []string{"E1", "E2"}},
		{name: "CRLF, multi-line field", content: "E1,a,yes,\"x\r\ny\"\r\nE2,b,no,y", wantIDs: []string{"E1", "E2"}},
		{name: "empty lines after the last row", content: "E1,a,yes,x\n\n\n", wantIDs: []string{"E1"}},
		{
			name:    "last row with a field too many, no final newline: skipped, not cut",
			content: "E1,a,yes,x\nE2,b,no,y,z",
			wantIDs: []string{"E1"},
		},
		{
			name:    "last row cut in the third field",
			content: "E1,a,yes,x\nE2,b,n",
			wantErr: "line 3: this last row has 3 fields, the header has 4" + cutTail,
		},
		{
			name:    "last row cut in the external_id",
			content: "E1,a,yes,x\nE",
			wantErr: "line 3: this last row has 1 fields, the header has 4" + cutTail,
		},
		{
			name:    "CRLF, last row cut",
			content: "E1,a,yes,x\r\nE2,b\r\n\r\nE3,c,",
			wantErr: "line 5: this last row has 3 fields, the header has 4" + cutTail,
		},
		{
			name:    "last row cut after a delimiter, so far blank",
			content: "E1,a,yes,x\n , ,",
			wantErr: "line 3: this last row has 3 fields, the header has 4" + cutTail,
		},
		{
			name:    "last row cut inside a quoted field",
			content: "E1,a,yes,x\nE2,b,no,\"y, z",
			wantErr: "line 3: this last record has a malformed quote on line 3" + cutTail,
		},
		{
			name:    "last row cut inside a multi-line field",
			content: "E1,a,yes,x\nE2,b,no,\"1 Main St\nSpring",
			wantErr: "line 3: this last record has a malformed quote on line 4" + cutTail,
		},
		{
			name:    "last row with a bare quote, no final newline",
			content: "E1,a,yes,x\nE2,b,no,5\" scr",
			wantErr: "line 3: this last record has a malformed quote on line 3" + cutTail,
		},
		{
			// Cut just after a line break inside a quoted field: the quote
			// is still open at the end of the file.
			name:    "cut after a line break inside a quoted field",
			content: "E1,a,yes,x\nE2,b,no,\"1 Main St\n",
			wantErr: "line 3: a quote opened on this line is not closed before the end of the file: " +
				"the file looks cut off (is it still being written, or was it copied incompletely?), or the quote is not closed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, path, err := pull(t, config.Source{}, header+tt.content)
			if tt.wantErr != "" {
				if got, want := errString(err), path+": "+tt.wantErr; got != want {
					t.Errorf("Pull error\n got: %s\nwant: %s", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			checkIDs(t, got, tt.wantIDs)
		})
	}
}

// Cut the file at every byte: either the pull fails, or every person whose
// row starts before the cut is reported by their external_id, emitted or
// skipped (and so left alone); nobody is lost to a cut.
func TestPullCutAnywhere(t *testing.T) {
	variants := []struct {
		name, eol string
		last      func(i int) string // the last field of row i
	}{
		{"LF, plain", "\n", func(i int) string { return fmt.Sprintf("note %d", i) }},
		{"LF, quoted", "\n", func(i int) string { return fmt.Sprintf(`"note, %d"`, i) }},
		{"CRLF, quoted over two lines", "\r\n", func(i int) string { return fmt.Sprintf("\"note\r\n%d\"", i) }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("external_id,username,enabled,note" + v.eol)
			headerLen := b.Len()
			starts := map[string]int{} // external_id -> offset of its row
			var order []string
			for i := range 12 {
				id := fmt.Sprintf("E%03d", i)
				starts[id] = b.Len()
				order = append(order, id)
				b.WriteString(id + ",u" + id + ",yes," + v.last(i) + v.eol)
			}
			data := []byte(b.String())
			rowEnd := map[int]bool{len(data): true}
			for _, at := range starts {
				rowEnd[at] = true
			}
			src := mustOpen(t, config.Source{})
			for n := headerLen; n <= len(data); n++ {
				reported := map[string]bool{}
				_, err := src.read(context.Background(), bytes.NewReader(data[:n]),
					func(id model.Identity) error { reported[id.ExternalID] = true; return nil },
					func(s connector.Skip) {
						if s.ExternalID != "" {
							reported[s.ExternalID] = true
						}
					})
				if err != nil {
					if !strings.Contains(err.Error(), "the file looks cut off") {
						t.Errorf("cut at %d: the error does not say the file looks cut off: %v", n, err)
					}
					if rowEnd[n] {
						t.Errorf("cut at %d, the end of a row: %v", n, err)
					}
					continue
				}
				for _, id := range order {
					if starts[id] < n && !reported[id] {
						t.Errorf("cut at %d (%q): %s is not reported, and the pull succeeded", n, data[max(0, n-12):n], id)
					}
				}
			}
		})
	}
}

// 97% of a 20,000-row export, cut at an arbitrary byte in the middle of a
// row: the pull fails and says where. (A cut inside the last field of the
// last row leaves a row that looks whole, which no reader can tell from
// one: TestPullCutAnywhere shows that such a person is still reported.)
func TestPullCutLargeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("employee_id;login;first_name;last_name;mail;department;active\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "E%05d;user%d;Given%d;Family%d;user%d@example.com;Dept %d;yes\n", i, i, i, i, i, i%20)
	}
	content := b.String()
	n := len(content) * 97 / 100
	row := content[strings.LastIndexByte(content[:n], '\n')+1 : n]
	if row == "" || strings.Count(row, ";") == 6 {
		n -= len(row) / 2 // mid-row, not in its last field
	}
	line := strings.Count(content[:n], "\n") + 1
	got, path, err := pull(t, config.Source{Mapping: map[string]string{"external_id": "employee_id", "username": "login"}, Settings: &Settings{Delimiter: ";"}}, content[:n])
	fields := strings.Count(content[strings.LastIndexByte(content[:n], '\n')+1:n], ";") + 1
	want := fmt.Sprintf("%s: line %d: this last row has %d fields, the header has 7%s", path, line, fields, cutTail)
	if errString(err) != want {
		t.Errorf("Pull error\n got: %v\nwant: %s", err, want)
	}
	if len(got.Skips) != 0 {
		t.Errorf("skips: %+v", got.Skips)
	}
	// The same file, whole but for its final line break, is fine.
	got, _, err = pull(t, config.Source{Mapping: map[string]string{"external_id": "employee_id", "username": "login"}, Settings: &Settings{Delimiter: ";"}},
		strings.TrimSuffix(content, "\n"))
	if err != nil || len(got.IDs) != 20000 {
		t.Errorf("the whole file without its final newline: %d identities, %v", len(got.IDs), err)
	}
}

func mustOpen(t testing.TB, cfg config.Source) *source {
	t.Helper()
	cfg.Name, cfg.Type = "hr", "csv"
	if set := settingsOf(&cfg); set.Path == "" {
		set.Path = "export.csv"
	}
	src, err := Open(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return src.(*source)
}

// The file on disk is read the same way as in memory: a cut file written
// with no final newline fails through Pull too.
func TestPullCutOffFile(t *testing.T) {
	path := writeFile(t, "external_id,username\nE1,a\nE2")
	src := mustOpen(t, config.Source{Settings: &Settings{Path: path}})
	err := src.Pull(context.Background(), func(model.Identity) error { return nil }, func(connector.Skip) {})
	if want := path + ": line 3: this last row has 1 fields, the header has 2" + cutTail; errString(err) != want {
		t.Errorf("Pull error\n got: %v\nwant: %s", err, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// A file that grows while it is read (an export still being written) can
// end in a row that looks whole: the pull fails instead.
func TestPullFileChanges(t *testing.T) {
	path := writeFile(t, "external_id,username\nE1,a\nE2,b\n")
	src := mustOpen(t, config.Source{Settings: &Settings{Path: path}})
	n := 0
	err := src.Pull(context.Background(), func(model.Identity) error {
		if n++; n == 1 {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("E3,c\nE4,d"); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}, func(connector.Skip) {})
	if want := path + ": the file changed while it was read (31 bytes when opened, "; !strings.HasPrefix(errString(err), want) ||
		!strings.HasSuffix(err.Error(), "40 now): it looks like it is still being written; the next run reads it again") {
		t.Errorf("Pull error\n got: %v\nwant: %s... 40 now): ...", err, want)
	}
}
