package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HR export as the binary reads it: a broken file must never look like
// people leaving.

// export is the content people() writes for rows, before any cut.
func export(rows []string) string {
	return csvHeader + "\n" + strings.Join(rows, "\n") + "\n"
}

// TestCSVCutExport: an export cut off mid-row (a copy that stopped, a file
// still being written) fails the run and writes nothing. 3% of 20,000
// people is under the 10% guard: without the check, 600 people would be
// blocked for leaving.
func TestCSVCutExport(t *testing.T) {
	rows := staff(20000, nil)
	s := newSite(t, siteOptions{primaryLimit: "25000"}, rows...)
	s.must(exitOK, "sync", "-c", s.config)
	// Compared as text: decoding 20,000 profiles would swell this test
	// process, which other tests measure their children against.
	list := func(args ...string) string {
		return s.must(exitOK, append([]string{"profiles", "list", "-c", s.config, "--format", "csv",
			"--fields", "username,external_id,state,block_reason,queued_at,activated_at,blocked_at,updated_at"}, args...)...).stdout
	}
	before := list()
	if n := strings.Count(before, "\n"); n != 20001 {
		t.Fatalf("the first sync made %d profiles, want 20000", n-1)
	}

	content := export(rows)
	n := len(content) * 97 / 100
	partial := content[strings.LastIndexByte(content[:n], '\n')+1 : n]
	if partial == "" || strings.Count(partial, ";") == strings.Count(csvHeader, ";") {
		n -= len(partial) / 2 // mid-row, not in its last field
	}
	line := strings.Count(content[:n], "\n") + 1
	s.write("people.csv", content[:n])

	for _, cmd := range []string{"sync", "plan"} {
		r := s.must(exitFailed, cmd, "-c", s.config)
		for _, want := range []string{"people.csv", fmt.Sprintf("line %d:", line), "the file looks cut off",
			"is it still being written, or was it copied incompletely?"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr does not say %q:\n%s", cmd, want, r)
			}
		}
	}
	if list() != before {
		t.Fatal("a cut export changed profiles")
	}
	if left := list("--state", "blocked", "--reason", "left_source"); strings.Count(left, "\n") != 1 {
		t.Fatalf("profiles blocked left_source after a cut export:\n%.500s", left)
	}

	// The whole export with no final line break is fine: nothing to do.
	s.write("people.csv", strings.TrimSuffix(content, "\n"))
	s.must(exitOK, "plan", "--check", "-c", s.config)
}

// TestCSVLineEnds: no final line break, and CRLF line ends, read the same
// as the plain file.
func TestCSVLineEnds(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	content := export(fivePeople())
	s.write("people.csv", strings.TrimSuffix(content, "\n"))
	s.must(exitOK, "sync", "-c", s.config)
	got := s.profiles()
	if len(got) != 5 || got["erin"] == nil {
		t.Fatalf("the export without a final line break gave %v", got)
	}
	crlf := strings.ReplaceAll(content, "\n", "\r\n")
	for name, c := range map[string]string{
		"LF":                          content,
		"CRLF":                        crlf,
		"CRLF without the last CRLF":  strings.TrimSuffix(crlf, "\r\n"),
		"CRLF cut between CR and LF":  strings.TrimSuffix(crlf, "\n"),
		"with a byte order mark, LF":  "\ufeff" + content,
		"empty lines after the rows":  content + "\n\r\n\n",
		"no final line break, quoted": strings.TrimSuffix(content, "yes\n") + `"yes"`,
	} {
		s.write("people.csv", c)
		if r := s.run("plan", "--check", "-c", s.config); r.code != exitOK {
			t.Errorf("%s: plan --check: %s", name, r)
		}
	}
}

// TestCSVSkipTrust: a skipped row keeps its person's profile when its
// external id can be trusted, and otherwise stops the run from taking
// anyone as gone. erin has left in every case.
func TestCSVSkipTrust(t *testing.T) {
	tests := []struct {
		name      string
		bob       string // bob's row; the others as they were
		skipID    string // the skip's external_id in the report
		why       string // in the skip's reason
		erinLeave bool   // erin is blocked left_source
	}{
		{
			name:   "a field too few: the columns may be shifted",
			bob:    strings.Replace(row("E2", "bob"), "Sales;", "Sales ", 1),
			why:    `has 8 fields, the header has 9, so its columns may be shifted (its external_id column reads "E2")`,
			skipID: "",
		},
		{
			name: "a field too many before the external id column is read as another",
			bob:  "X;" + row("E2", "bob"),
			why:  `has 10 fields, the header has 9, so its columns may be shifted (its external_id column reads "X")`,
		},
		{
			name:      "a stray quote after the external id",
			bob:       strings.Replace(row("E2", "bob"), "Employee", `15" Employee`, 1),
			skipID:    "E2",
			why:       `malformed quote in column "title"`,
			erinLeave: true,
		},
		{
			name: "a stray quote in the external id",
			bob:  strings.Replace(row("E2", "bob"), "E2", `E"2`, 1),
			why:  `malformed quote in column "employee_id"`,
		},
		{
			name: "a stray quote after the external id, and a delimiter too many",
			bob:  strings.Replace(row("E2", "bob"), "Employee", `15" Emp;loyee`, 1),
			why:  `malformed quote in column "title" at position 41: " inside an unquoted field (quote the field and double the ") (its external_id column reads "E2")`,
		},
		{
			name:      "a cell longer than max_field_bytes",
			bob:       strings.Replace(row("E2", "bob"), "Employee", strings.Repeat("Employee", 625), 1),
			skipID:    "E2",
			why:       `column "title" is 5000 bytes long, more than max_field_bytes (4096)`,
			erinLeave: true,
		},
		{
			name:      "active reads 1.0",
			bob:       row("E2", "bob", "active=1.0"),
			skipID:    "E2",
			why:       `invalid enabled value "1.0" in column "active"`,
			erinLeave: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, siteOptions{primaryLimit: "10", maxDeprov: "100%"}, fivePeople()...)
			s.must(exitOK, "sync", "-c", s.config)
			before := s.profiles()
			if before["erin"].state() != "active" {
				t.Fatalf("erin is %s before, want active", before["erin"].state())
			}

			rows := fivePeople()[:4] // erin left
			rows[1] = tt.bob
			s.people(rows...)
			r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
			rep := decodeReport(t, r)
			if len(rep.Skipped) != 1 || rep.Skipped[0].ExternalID != tt.skipID || rep.Skipped[0].Where != "line 3" ||
				!strings.Contains(rep.Skipped[0].Reason, tt.why) {
				t.Fatalf("skipped %+v, want external id %q at line 3, saying %s", rep.Skipped, tt.skipID, tt.why)
			}
			if len(rep.Skipped[0].Reason) > 300 {
				t.Errorf("the reason copies a long value: %d bytes", len(rep.Skipped[0].Reason))
			}
			after := s.profiles()
			if d := diffProfiles(map[string]profile{"bob": before["bob"]}, map[string]profile{"bob": after["bob"]}); d != "" {
				t.Errorf("bob's skipped row changed his profile:\n%s", d)
			}
			erin := after["erin"].state()
			suspended := strings.Contains(r.stdout, `"leaves_suspended":`)
			switch {
			case tt.erinLeave && (erin != "blocked left_source" || suspended):
				t.Errorf("erin is %s (leaves suspended: %v), want blocked left_source: bob's row names bob", erin, suspended)
			case !tt.erinLeave && (erin != "active" || !suspended):
				t.Errorf("erin is %s (leaves suspended: %v), want active and leaves suspended: bob's row may be anyone's", erin, suspended)
			}
		})
	}
}

// TestCSVLongLine: a line longer than any row of cells within the limit
// fails the run (exit 1), naming the file, the line and the limit; the
// store is unchanged.
func TestCSVLongLine(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.profiles()
	rows := fivePeople()
	rows[2] = strings.Replace(rows[2], "Employee", strings.Repeat("x", 2<<20), 1)
	s.people(rows...)
	r := s.must(exitFailed, "sync", "-c", s.config)
	for _, want := range []string{filepath.Join(s.dir, "people.csv"), "line 4 is longer than 1048576 bytes", "max_field_bytes"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if len(r.stderr) > 4096 {
		t.Errorf("the error is %d bytes: it copies the line", len(r.stderr))
	}
	if d := diffProfiles(before, s.profiles()); d != "" {
		t.Errorf("a failed pull changed profiles:\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "people.csv")); err != nil {
		t.Fatal(err)
	}
}
