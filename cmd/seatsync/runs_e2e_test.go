package main_test

import (
	"encoding/csv"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRunsAndAudit reads the run history and the audit log back through
// the binary: runs list, runs show, audit and its filters.
func TestRunsAndAudit(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "10"}, fivePeople()...)
	first := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	s.people(append(fivePeople(), row("E6", "frank"))...)
	second := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	firstID, secondID := decodeReport(t, first).RunID, decodeReport(t, second).RunID
	s.must(exitOK, "profiles", "block", "-c", s.config, "alice")

	// runs list: both syncs, newest first, with their counts.
	var runs []struct {
		ID      string         `json:"run_id"`
		Mode    string         `json:"mode"`
		Result  string         `json:"result"`
		Summary map[string]int `json:"summary"`
		Report  any            `json:"report"`
	}
	r := s.must(exitOK, "runs", "list", "-c", s.config, "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("runs list --format json does not decode: %v\n%s", err, r)
	}
	var syncs []string
	for _, run := range runs {
		if run.Report != nil {
			t.Errorf("runs list carries run %s's report", run.ID)
		}
		if run.Mode == "sync" {
			syncs = append(syncs, run.ID)
		}
	}
	if want := []string{secondID, firstID}; !reflect.DeepEqual(syncs, want) {
		t.Errorf("runs list syncs = %v, want %v (newest first)\n%s", syncs, want, r.stdout)
	}
	for _, run := range runs {
		if run.ID == firstID && (run.Summary["create"] != 5 || run.Result != "ok") {
			t.Errorf("runs list: first sync %+v, want ok with 5 creates", run)
		}
	}
	r = s.must(exitOK, "runs", "list", "-c", s.config)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "TRIGGER") ||
		!strings.Contains(lines[1], " cli ") || !strings.Contains(r.stdout, firstID) ||
		strings.Index(r.stdout, secondID) > strings.Index(r.stdout, firstID) {
		t.Errorf("runs list (text):\n%s", r.stdout)
	}
	if r = s.must(exitOK, "runs", "list", "-c", s.config, "--limit", "1", "--format", "json"); strings.Count(r.stdout, `"run_id"`) != 1 {
		t.Errorf("runs list --limit 1:\n%s", r.stdout)
	}

	// runs show: the report the sync printed.
	for id, printed := range map[string]result{firstID: first, secondID: second} {
		r = s.must(exitOK, "runs", "show", "-c", s.config, id, "--format", "json")
		var got, want any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("runs show --format json does not decode: %v\n%s", err, r)
		}
		if err := json.Unmarshal([]byte(printed.stdout), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("runs show %s --format json is not the report the sync printed:\n%s\nwant:\n%s", id, r.stdout, printed.stdout)
		}
	}
	for _, format := range []string{"text", "csv", "markdown"} {
		if r = s.must(exitOK, "runs", "show", "-c", s.config, secondID, "--format", format); !strings.Contains(r.stdout, "frank") {
			t.Errorf("runs show --format %s does not show frank's create:\n%s", format, r.stdout)
		}
	}

	// audit --user: alice's create and the admin block, newest first.
	var entries []struct {
		RunID    string          `json:"run_id"`
		Actor    string          `json:"actor"`
		Action   string          `json:"action"`
		Username string          `json:"username"`
		Fields   []string        `json:"fields"`
		Before   json.RawMessage `json:"before"`
		After    json.RawMessage `json:"after"`
	}
	r = s.must(exitOK, "audit", "-c", s.config, "--user", "ALICE", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("audit --format json does not decode: %v\n%s", err, r)
	}
	if len(entries) != 2 || entries[0].Action != "block" || !strings.HasPrefix(entries[0].Actor, "cli:") ||
		entries[1].Action != "create" || entries[1].RunID != firstID || entries[1].Actor != "sync" {
		t.Errorf("audit --user ALICE = %+v, want the admin block by cli:... then the create of %s", entries, firstID)
	}
	// The block records what it changed, not the whole profile; the create
	// every field it set.
	if len(entries) == 2 {
		block, create := entries[0], entries[1]
		var before, after map[string]any
		if json.Unmarshal(block.Before, &before) != nil || json.Unmarshal(block.After, &after) != nil ||
			!slices.Contains(block.Fields, "state") || slices.Contains(block.Fields, "email") ||
			before["state"] != "active" || after["state"] != "blocked" || after["email"] != nil {
			t.Errorf("audit: the block = fields %v, before %s, after %s; want the state (and what a block changes) only", block.Fields, block.Before, block.After)
		}
		var created map[string]any
		if string(create.Before) != "null" || json.Unmarshal(create.After, &created) != nil ||
			!slices.Contains(create.Fields, "username") || created["username"] != "alice" {
			t.Errorf("audit: the create = fields %v, before %s, after %s; want no before, and every field it set", create.Fields, create.Before, create.After)
		}
	}
	r = s.must(exitOK, "audit", "-c", s.config, "--user", "alice")
	if !strings.Contains(r.stdout, "cli:") || strings.Contains(r.stdout, "bob") || !strings.HasPrefix(r.stdout, "TIME") {
		t.Errorf("audit --user alice (text):\n%s", r.stdout)
	}
	r = s.must(exitOK, "audit", "-c", s.config, "--run", secondID, "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][5] != "frank" || rows[1][7] != "" || !json.Valid([]byte(rows[1][8])) {
		t.Errorf("audit --run %s --format csv = %q, %v; want the header and frank's create, after as JSON", secondID, rows, err)
	}
	all := strings.Count(s.must(exitOK, "audit", "-c", s.config, "--format", "csv").stdout, "\n")
	if recent := strings.Count(s.must(exitOK, "audit", "-c", s.config, "--since", "1h", "--format", "csv").stdout, "\n"); recent != all || all != 8 {
		t.Errorf("audit --since 1h has %d lines, all %d: want 8 (a header and 7 entries)", recent, all)
	}
	if r = s.must(exitOK, "audit", "-c", s.config, "--since", "1ns", "--format", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("audit --since 1ns: %s, want []", r.stdout)
	}

	// Bad command lines.
	if r = s.must(exitUsage, "runs", "show", "-c", s.config, "no-such-run"); !strings.Contains(r.stderr, "no-such-run") {
		t.Errorf("runs show of an unknown run does not name it:\n%s", r)
	}
	s.must(exitUsage, "runs", "show", "-c", s.config)
	s.must(exitUsage, "runs", "show", "-c", s.config, firstID, "--format", "xml")
	s.must(exitUsage, "runs", "list", "-c", s.config, "--format", "csv")
	s.must(exitUsage, "runs", "list", "-c", s.config, "--limit", "0")
	s.must(exitUsage, "runs", "list", "-c", s.config, "--bogus")
	s.must(exitUsage, "audit", "-c", s.config, "--since", "yesterday")
	s.must(exitUsage, "audit", "-c", s.config, "--format", "markdown")
	s.must(exitUsage, "audit")
}
