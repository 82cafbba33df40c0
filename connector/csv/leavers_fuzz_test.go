package csv

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
)

// leaversN people, E1001 to E1020, are in the store, all active, owned by
// source hr.
const leaversN = 20

// leaversMaxField is small so that mutations reach it.
const leaversMaxField = 32

// leaversFile is the export the store is in step with: the external_id
// first, and every column mapped (a quoted line break in a mapped column
// fails the pull).
func leaversFile(eol string) string {
	var b strings.Builder
	b.WriteString("external_id,username,email,given_name,family_name,display_name,groups,enabled" + eol)
	for i := range leaversN {
		id := 1001 + i
		name := fmt.Sprintf("Doe%d", id)
		if i%4 == 0 {
			name = fmt.Sprintf(`"Doe, ""J"" %d"`, id) // quoted, with the delimiter and a quote
		}
		enabled := "yes"
		if i%5 == 0 {
			enabled = "Y"
		}
		fmt.Fprintf(&b, "E%d,u%d,u%d@example.com,Jo,Doe,%s,staff|team%d,%s%s", id, id, id, name, i%3, enabled, eol)
	}
	return b.String()
}

// present reports whether the person with external id id is truly in data,
// decided without the reader. Each line is split on the commas outside
// double quotes (a quote opens or closes, whatever follows it), and each
// field taken without the spaces and one pair of quotes around it. The
// person is present when some line has id as a field, unless that line has
// as many fields as the header and another value first: that reads as
// someone else's whole row.
//
// "id occurs somewhere in data" would be too much to ask: two edits ("x,"
// before E1001 and a comma deleted later in its row) make a well-formed
// row of person x, with E1001 in its username, and nothing tells it from
// a real one. But a line with E1001 anywhere in it and a field too many
// or too few keeps E1001 present: its row is damaged, not gone, and the
// reader must not trust another id from it.
func present(data []byte, id string) bool {
	header := -1
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.TrimSuffix(line, []byte("\r"))) == 0 {
			continue // the reader skips empty lines
		}
		fields := splitLine(line)
		if header < 0 {
			header = len(fields)
			continue
		}
		for i, f := range fields {
			f = bytes.TrimSpace(f)
			if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
				f = f[1 : len(f)-1]
			}
			if string(f) == id && (i == 0 || len(fields) != header) {
				return true
			}
		}
	}
	return false
}

// splitLine splits line on the commas outside double quotes.
func splitLine(line []byte) [][]byte {
	var fields [][]byte
	quoted, start := false, 0
	for i, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			fields = append(fields, line[start:i])
			start = i + 1
		}
	}
	return append(fields, line[start:])
}

// FuzzLeavers mutates an export the store is in step with, pulls it with
// the real reader and plans with reconcile.Calculate: however the file is
// broken, nobody is blocked for left_source or deleted unless their row is
// truly gone from it (present). A pull that fails writes nothing, which is
// always safe.
func FuzzLeavers(f *testing.F) {
	base := leaversFile("\n")
	seeds := []string{
		base,
		leaversFile("\r\n"),
		strings.TrimSuffix(base, "\n"),
		"\ufeff" + base,
		base[:len(base)*97/100], // cut mid-row
		base[:strings.Index(base, "E1010")],
		strings.Replace(base, "E1005,u1005,", "E1005,u1005", 1),                                   // a field too few
		strings.Replace(base, "E1005,u1005,", "E1005,u1005,,", 1),                                 // a field too many
		strings.Replace(base, "E1005,u1005,", "x,E1005,u1005", 1),                                 // shifted, looks whole: x's row
		strings.Replace(base, "E1005,u1005,", "x,E1005,u1005,", 1),                                // shifted, a field too many
		strings.Replace(base, "E1005,u1005,", "x,E1005,u1005,", 1)[:len(base)*97/100],             // and cut
		strings.Replace(base, "Doe1006", `Doe"1006`, 1),                                           // a stray quote after the id
		strings.Replace(strings.Replace(base, "E1006,", "x,E1006,", 1), "Doe1006", `Doe"1006`, 1), // and a field too many
		strings.Replace(base, "E1006,", `E"1006,`, 1),                                             // a stray quote in the id
		strings.Replace(base, "E1006,u1006,", `"E1006"x,u1006,`, 1),                               // text after a closing quote
		strings.Replace(base, "Doe1007,", `"Doe1007,`, 1),                                         // a quote never closed
		strings.Replace(base, "Doe1007,", "\"Doe\n1007\",", 1),                                    // a line break in a mapped cell
		strings.Replace(base, "E1008,u1008,", "E1008,"+strings.Repeat("u", 40)+",", 1),            // over max_field_bytes
		strings.Replace(base, "E1008,", "E"+strings.Repeat("1", 40)+",", 1),                       // the id over it
		strings.Replace(base, ",yes\n", ",1.0\n", 3),                                              // enabled unreadable
		strings.Replace(base, "E1009,u1009", "E1009,M\xfcller", 1),                                // not UTF-8
		strings.Replace(base, "E1009,", "E\xff1009,", 1),
		strings.Replace(base, "E1011,", "E1010,", 1),             // a duplicate id
		strings.Replace(base, "u1012@example.com", "u1012@", 1),  // an email the planner refuses
		strings.Replace(base, "E1013,u1013,", "E1013,u1001,", 1), // a username taken
		strings.Replace(base, "E1014,u1014,", "E1014,,", 1),      // no username
		strings.Replace(base, "E1015,", ",", 1),                  // no id
		strings.Replace(base, "E1015,u1015", " , ", 1),
		strings.Replace(base, "\nE1016", "\n\nE1016", 1),
		strings.Replace(base, "external_id,", "employee_id,", 1), // no id column: the pull fails
		"external_id,username\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	profiles := make([]model.Profile, leaversN)
	for i := range profiles {
		id := 1001 + i
		profiles[i] = model.Profile{ID: int64(i + 1), Version: 1, Username: fmt.Sprintf("u%d", id),
			Email: fmt.Sprintf("u%d@example.com", id), Area: "primary", State: model.Active, Source: "hr",
			ExternalID: fmt.Sprintf("E%d", id), ActivatedAt: t0, CreatedAt: t0, UpdatedAt: t0}
	}
	policy := licensing.NewPolicy([]licensing.Pool{{Name: "primary", Limit: 100, Areas: []string{"primary"}}}, nil, nil, "keep")

	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := Open(config.Source{Name: "hr", Type: "csv", MaxFieldBytes: leaversMaxField, Settings: &Settings{Path: "fuzz.csv"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []model.Identity
		var skips []reconcile.Skipped
		_, err = src.(*source).read(context.Background(), bytes.NewReader(data),
			func(id model.Identity) error { ids = append(ids, id); return nil },
			func(s connector.Skip) {
				skips = append(skips, reconcile.Skipped{Source: "hr", ExternalID: s.ExternalID, Where: s.Where, Reason: s.Reason})
			})
		if err != nil {
			return // the run stops and writes nothing
		}
		for _, onLeave := range []string{reconcile.LeaveBlock, reconcile.LeaveDelete} {
			plan := reconcile.Calculate(reconcile.Input{
				Now: t0.Add(24 * time.Hour),
				Pulls: []reconcile.Pull{{
					Rules: reconcile.SourceRules{Name: "hr", Type: "csv", Area: "primary", OnLeave: onLeave,
						MaxFieldBytes: leaversMaxField},
					Identities: ids,
					Skipped:    skips,
				}},
				Profiles:       profiles,
				Policy:         policy,
				MaxDeprovision: func(total int) int { return total }, // the guard is not what is tested
			})
			for _, c := range plan.Changes {
				if !c.Deprovision {
					continue
				}
				if id := c.Before.ExternalID; present(data, id) {
					t.Fatalf("on_leave %s: %s %s (%s) though its row is in the file\nskipped: %+v\nfile:\n%s",
						onLeave, c.Action, id, c.Reason, skips, data)
				}
			}
		}
	})
}
