package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "seatsync.db")
		return func() store.Store {
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seatsync.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "deeper", "seatsync.db")
	_, err := Open(t.Context(), path)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open two directories down a missing path = %v, want an error wrapping os.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Errorf("error %q does not name the directory", err)
	}
	if _, statErr := os.Stat(filepath.Dir(filepath.Dir(path))); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("Open created a tree of directories")
	}
}

// The store holds names, e-mail addresses and the audit log: its files are
// the owner's alone, whatever the umask.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(t.Context(), filepath.Join(dir, "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SaveRun(t.Context(), store.Run{ID: "r", Mode: "sync", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{"state": 0o700, "seatsync.db": 0o600, "seatsync.db-wal": 0o600, "seatsync.db-shm": 0o600}
	for name, mode := range want {
		p := filepath.Join(filepath.Dir(dir), name)
		if name != "state" {
			p = filepath.Join(dir, name)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s is %v, want %v", name, got, mode)
		}
	}
}

func TestOpenPathWithSpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seat sync.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at %s: %v", path, err)
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	// Check on several pooled connections at once.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "1", "busy_timeout": "10000", "foreign_keys": "1",
			"page_size": "32768",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}

// TestBeginImmediate checks that a write transaction takes the write lock
// at BEGIN: while one is open, another handle cannot even start one.
func TestBeginImmediate(t *testing.T) {
	s1, path := openTemp(t)
	s2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	entered := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s1.WithTx(context.Background(), func(store.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = s2.WithTx(ctx, func(store.Tx) error { return nil })
	if err == nil {
		t.Errorf("a second write transaction began while the first was open")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s2.WithTx(t.Context(), func(store.Tx) error { return nil }); err != nil {
		t.Errorf("after the first committed: %v", err)
	}
}

func schemaVersionOf(t *testing.T, s *Store) int {
	t.Helper()
	v, err := schemaVersion(t.Context(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReopenIsNoOp(t *testing.T) {
	s, path := openTemp(t)
	p := model.Profile{Username: "jdoe", Area: "primary", State: model.Active}
	if err := s.WithTx(t.Context(), func(tx store.Tx) error { return tx.Insert(t.Context(), &p) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for range 2 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if v, want := schemaVersionOf(t, s), len(migrations()); v != want {
			t.Errorf("schema version %d, want %d", v, want)
		}
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations()) {
			t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations()))
		}
		if _, err := s.Profile(t.Context(), "jdoe"); err != nil {
			t.Errorf("after reopen: %v", err)
		}
		s.Close()
	}
}

func TestMigrateOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seatsync.db")
	old := migrations()
	s, err := open(t.Context(), path, old)
	if err != nil {
		t.Fatal(err)
	}
	p := model.Profile{Username: "jdoe", Area: "primary", State: model.Active}
	if err := s.WithTx(t.Context(), func(tx store.Tx) error { return tx.Insert(t.Context(), &p) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A newer binary knows one migration more: it adds a column and fills it.
	next := len(old) + 1
	newer := append(old, migration{version: next, name: "add note", sql: `
		ALTER TABLE profiles ADD COLUMN note TEXT NOT NULL DEFAULT '';
		UPDATE profiles SET note = 'migrated ' || username;`})
	s, err = open(t.Context(), path, newer)
	if err != nil {
		t.Fatalf("open with a newer schema: %v", err)
	}
	defer s.Close()
	if v := schemaVersionOf(t, s); v != next {
		t.Errorf("schema version %d, want %d", v, next)
	}
	var note string
	if err := s.db.QueryRow(`SELECT note FROM profiles WHERE username = 'jdoe'`).Scan(&note); err != nil || note != "migrated jdoe" {
		t.Errorf("migrated column = %q, %v", note, err)
	}
	if got, err := s.Profile(t.Context(), "JDOE"); err != nil || got.ID != p.ID {
		t.Errorf("profile after migration: %+v, %v", got, err)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seatsync.db")
	bad := append(migrations(), migration{version: len(migrations()) + 1, name: "broken", sql: `
		CREATE TABLE half_done (x INTEGER);
		THIS IS NOT SQL;`})
	if _, err := open(t.Context(), path, bad); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("open with a broken migration = %v, want an error naming it", err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open after a failed migration: %v", err)
	}
	defer s.Close()
	if v := schemaVersionOf(t, s); v != len(migrations()) {
		t.Errorf("schema version %d, want %d", v, len(migrations()))
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'half_done'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a failed migration left a table behind (%d, %v)", n, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(t.Context(), path)
	if err == nil {
		t.Fatal("Open of a schema from the future succeeded")
	}
	for _, want := range []string{"99", "newer", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestExactTimes checks what the conformance suite does not demand of
// every store: nanosecond precision, and the full range unix nanoseconds
// hold.
func TestExactTimes(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	ny := time.FixedZone("EST", -5*3600)
	p := model.Profile{
		Username: "jdoe", Area: "primary", State: model.Active,
		QueuedAt:    time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC),
		ActivatedAt: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), // unix 0 is not "zero"
		BlockedAt:   time.Date(1678, 1, 1, 0, 0, 0, 1, time.UTC),
		CreatedAt:   time.Date(2261, 12, 31, 23, 59, 59, 1, time.UTC),
		UpdatedAt:   time.Date(2026, 6, 1, 12, 0, 0, 7, ny),
	}
	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &p) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Profile(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.UpdatedAt = p.UpdatedAt.UTC()
	// Compare without time.Time.Equal, so the location must match too.
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool {
		return a == b
	})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	bad := model.Profile{Username: "old", Area: "primary", State: model.Active, CreatedAt: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &bad) })
	if err == nil || !strings.Contains(err.Error(), "created_at") {
		t.Errorf("Insert of a time out of range = %v, want an error naming created_at", err)
	}
}

func TestInsertRefusesInvalidProfiles(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for _, p := range []model.Profile{
		{Area: "primary", State: model.Active},
		{Username: "x", Area: "primary", State: "enabled"},
		{Username: "x", Area: "primary", State: model.Active, Title: "nul\x00byte"},
	} {
		if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &p) }); err == nil {
			t.Errorf("Insert(%+v) succeeded", p)
		}
	}
}

func TestSaveRunRefusesInvalidJSON(t *testing.T) {
	s, _ := openTemp(t)
	err := s.SaveRun(t.Context(), store.Run{ID: "r", Mode: "sync", Result: "ok", Report: json.RawMessage(`{"broken"`)})
	if err == nil || !strings.Contains(err.Error(), "report") {
		t.Errorf("SaveRun with broken JSON = %v, want an error naming the report", err)
	}
}

func TestWriteWaitsForContext(t *testing.T) {
	s, _ := openTemp(t)
	entered, release := make(chan struct{}), make(chan struct{})
	go s.WithTx(context.Background(), func(store.Tx) error { close(entered); <-release; return nil })
	<-entered
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.WithTx(ctx, func(store.Tx) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WithTx behind a busy writer with an expiring context = %v, want DeadlineExceeded", err)
	}
}

func TestDecodeGroupsAndAttributes(t *testing.T) {
	groups := [][]string{
		nil, {}, {""}, {"a"}, {"a", "b", "c"},
		{"CN=App Users,OU=Groups,DC=corp,DC=example", "CN=Staff,OU=Groups,DC=corp,DC=example"},
		{`with "quotes"`, `back\slash`, "R&D <x>", "tab\there", "ünïcödé", "\u2028", "a,b", "[]", `","`},
		{string([]byte{0xff, 'x'})}, // invalid UTF-8 becomes U+FFFD
	}
	for _, g := range groups {
		arg := groupsArg(g)
		ns := sql.NullString{}
		if arg != nil {
			ns = sql.NullString{String: arg.(string), Valid: true}
		}
		got, err := decodeGroups(ns)
		if err != nil {
			t.Fatalf("decodeGroups(%q): %v", ns.String, err)
		}
		var want []string
		if g != nil {
			if err := json.Unmarshal([]byte(ns.String), &want); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("groups %q (-want +got):\n%s", g, diff)
		}
	}
	attrs := []map[string]string{
		nil, {}, {"": ""}, {"a": "1"}, {"company": "Acme", "costCenter": "4711"},
		{`k"q`: `v\b`, "x": "R&D", "sep": `":"`, "c": "{}"},
	}
	for _, m := range attrs {
		arg := attributesArg(m)
		ns := sql.NullString{}
		if arg != nil {
			ns = sql.NullString{String: arg.(string), Valid: true}
		}
		got, err := decodeAttributes(ns)
		if err != nil {
			t.Fatalf("decodeAttributes(%q): %v", ns.String, err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("attributes %q (-want +got):\n%s", m, diff)
		}
	}
	// Text written by others (encoding/json, an admin) still decodes.
	for text, want := range map[string][]string{
		`[ "a" , "b" ]`: {"a", "b"},
		"[\n]":          {},
		`["R\u0026D"]`:  {"R&D"},
	} {
		got, err := decodeGroups(sql.NullString{String: text, Valid: true})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("decodeGroups(%q) (-want +got):\n%s", text, diff)
		}
	}
	for _, text := range []string{`[`, `["a"`, `["a",]`, `{"a"}`, `{"a":1}`} {
		if _, err := decodeGroups(sql.NullString{String: text, Valid: true}); err == nil && text[0] == '[' {
			t.Errorf("decodeGroups(%q) succeeded", text)
		}
		if _, err := decodeAttributes(sql.NullString{String: text, Valid: true}); err == nil && text[0] == '{' {
			t.Errorf("decodeAttributes(%q) succeeded", text)
		}
	}
}

func FuzzSplitStringArray(f *testing.F) {
	for _, s := range []string{`[]`, `["a"]`, `["a","b"]`, `[""]`, `["a\"b"]`, `["a",`, `[","]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := splitStringArray(s)
		if !ok {
			return
		}
		var want []string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("splitStringArray(%q) = %q, but it is not JSON: %v", s, got, err)
		}
		if !cmp.Equal(want, got) {
			t.Fatalf("splitStringArray(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestSeatCheckAcrossProcesses runs the seat check of the conformance suite
// from separate processes, as two replicas on one host would.
func TestSeatCheckAcrossProcesses(t *testing.T) {
	const limit, procs = 5, 3
	s, path := openTemp(t)
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSeatCheckChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SEATSYNC_CHILD_DB="+path, fmt.Sprintf("SEATSYNC_CHILD_ID=%d", i), fmt.Sprintf("SEATSYNC_CHILD_LIMIT=%d", limit))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d (pid %d): %v", i, cmd.Process.Pid, err)
		}
	}
	var n int
	err := s.WithTx(t.Context(), func(tx store.Tx) (err error) {
		n, err = tx.CountActive(t.Context(), []string{"primary"}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != limit {
		t.Errorf("%d active profiles after seat checks from %d processes, want the limit %d", n, procs, limit)
	}
}

// TestSeatCheckChild is the child process of TestSeatCheckAcrossProcesses.
func TestSeatCheckChild(t *testing.T) {
	path := os.Getenv("SEATSYNC_CHILD_DB")
	if path == "" {
		t.Skip("only run by TestSeatCheckAcrossProcesses")
	}
	id, limit := os.Getenv("SEATSYNC_CHILD_ID"), 0
	fmt.Sscan(os.Getenv("SEATSYNC_CHILD_LIMIT"), &limit)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 2 * limit {
		err := s.WithTx(t.Context(), func(tx store.Tx) error {
			n, err := tx.CountActive(t.Context(), []string{"primary"}, nil)
			if err != nil || n >= limit {
				return err
			}
			time.Sleep(time.Millisecond) // widen the window a racy store would lose in
			p := model.Profile{Username: fmt.Sprintf("p%s-%d", id, i), Area: "primary", State: model.Active}
			return tx.Insert(t.Context(), &p)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Runs saved before schema version 3 kept their report as text; they read
// back as they were, and saving such a run again stores its report
// compressed.
func TestReportsSavedBeforeCompression(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seatsync.db")
	s, err := open(t.Context(), path, migrations()[:2])
	if err != nil {
		t.Fatal(err)
	}
	// As SaveRun wrote runs then: the report as text, key order and
	// spacing as they came.
	const oldReport = `{"run_id": "01OLD", "changes": [{"action": "create", "username": "jdoe"}]}`
	if _, err := s.db.Exec(`INSERT INTO runs (id, mode, result, error, started_at, finished_at, sources, summary, report)
		VALUES ('01OLD', 'sync', 'ok', '', 1, 2, '["hr"]', '{"create":1}', ?)`, oldReport); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Run(t.Context(), "01OLD")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Report) != oldReport {
		t.Errorf("old report reads back as %s, want %s", r.Report, oldReport)
	}

	r.Report = json.RawMessage(`{"run_id":"01OLD","changes":[]}`)
	if err := s.SaveRun(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var text sql.NullString
	var blob []byte
	if err := s.db.QueryRow(`SELECT report, report_gzip FROM runs WHERE id = '01OLD'`).Scan(&text, &blob); err != nil {
		t.Fatal(err)
	}
	if text.Valid || len(blob) == 0 {
		t.Errorf("saved again: report %q, report_gzip %d bytes; want only report_gzip", text.String, len(blob))
	}
	if got, err := s.Run(t.Context(), "01OLD"); err != nil || string(got.Report) != string(r.Report) {
		t.Errorf("saved again: report %s, %v; want %s", got.Report, err, r.Report)
	}
}

// A large report is stored compressed, and a damaged one is an error, not
// garbage.
func TestReportCompressed(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	report := append(make([]byte, 0, 2<<20), `{"run_id":"01BIG","changes":[`...)
	for i := range 20_000 {
		if i > 0 {
			report = append(report, ',')
		}
		report = fmt.Appendf(report, `{"action":"create","username":"user%d","fields":{"email":{"old":null,"new":"user%d@example.com"}}}`, i, i)
	}
	report = append(report, `]}`...)
	if err := s.SaveRun(ctx, store.Run{ID: "01BIG", Mode: "sync", Result: "ok", Report: report}); err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := s.db.QueryRow(`SELECT length(report_gzip) FROM runs WHERE id = '01BIG'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == 0 || stored > len(report)/5 {
		t.Errorf("a %d-byte report is stored in %d bytes, want it compressed", len(report), stored)
	}

	if _, err := s.db.Exec(`UPDATE runs SET report_gzip = substr(report_gzip, 1, length(report_gzip) / 2) WHERE id = '01BIG'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx, "01BIG"); err == nil {
		t.Error("Run with a damaged report succeeded")
	}
}

// TestAuditUsernameIndexed: audit --user on a long audit log reads one
// user's entries through audit_username, not the whole table.
func TestAuditUsernameIndexed(t *testing.T) {
	s, _ := openTemp(t)
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN SELECT seq FROM audit WHERE username = ? COLLATE NOCASE ORDER BY seq DESC LIMIT ?`, "alice", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "audit_username") {
		t.Errorf("the username query does not use audit_username: %s", p)
	}
}

// A store made before the profile counts gets them counted from its
// profiles by the migration that adds them.
func TestMigrateCountsProfiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seatsync.db")
	before := migrations()[:9]
	s, err := open(t.Context(), path, before)
	if err != nil {
		t.Fatal(err)
	}
	ps := []model.Profile{
		{Username: "a", Area: "primary", State: model.Active, Source: "hr", ExternalID: "1"},
		{Username: "b", Area: "primary", State: model.Active, Source: "hr", ExternalID: "2"},
		{Username: "c", Area: "primary", State: model.Blocked, BlockReason: model.ReasonLicense, Source: "hr", ExternalID: "3"},
		{Username: "d", Area: "partners", State: model.Active},
	}
	// Written as the old binary wrote them: without profile_counts.
	for _, p := range ps {
		if _, err := s.db.ExecContext(t.Context(), `INSERT INTO profiles (version, username, username_fold, area, state, block_reason, source, external_id)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?)`, p.Username, p.Username, p.Area, p.State, p.BlockReason, p.Source, p.ExternalID); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tally, err := s.Tally(t.Context(), store.TallyRequest{Pools: [][]string{{"primary"}, {"partners"}}, Sources: []string{"hr"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tally.Active, []int{2, 1}) || !slices.Equal(tally.Owned, []int{3}) {
		t.Errorf("after the migration Tally = %+v, want active [2 1], owned [3]", tally)
	}
}
