package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/pgtest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	srv := pgtest.Shared(t)
	storetest.Run(t, func(t *testing.T) func() store.Store {
		dsn := srv.NewDatabase(t)
		return func() store.Store {
			s, err := Open(t.Context(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

// Replicas that start together migrate once, one at a time; opening again
// changes nothing.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn, nil)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, _ := migrations()
	var n, v int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || v != len(ms) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, v, len(ms))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, dsn := openTemp(t)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "newer than this seatsync knows") {
		t.Fatalf("Open of a newer schema = %v, want a refusal", err)
	}
	// The refusal gave the migration lock back.
	var held int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2`,
		lockClass, lockMigrate).Scan(&held); err != nil || held != 0 {
		t.Errorf("migration lock held %d times after a refusal (%v)", held, err)
	}
}

// A migration that fails leaves the schema as it was.
func TestMigrationFailureRollsBack(t *testing.T) {
	s, dsn := openTemp(t)
	ms, _ := migrations()
	bad := append(ms, migration{version: len(ms) + 1, name: "broken", sql: `CREATE TABLE half (x int); SELECT no_such_function();`})
	if _, err := open(t.Context(), dsn, bad); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("open with a broken migration = %v, want its error", err)
	}
	var exists bool
	if err := s.pool.QueryRow(t.Context(), `SELECT to_regclass('half') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("the broken migration's table exists: %v, %v", exists, err)
	}
}

// The connection string is a secret: no error shows its password.
func TestErrorsHideThePassword(t *testing.T) {
	srv := pgtest.Shared(t)
	for _, dsn := range []string{
		fmt.Sprintf("postgres://postgres:s3cret-pw@127.0.0.1:%d/nosuchdb?sslmode=disable", srv.Port),
		fmt.Sprintf("host=127.0.0.1 port=%d user=nobody password=s3cret-pw dbname=x sslmode=disable", srv.Port),
		"postgres://u:s3cret-pw@127.0.0.1:1/x?sslmode=bogus",
		"postgres://u:s3cret-pw@[bad",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := Open(ctx, dsn, nil)
		cancel()
		if err == nil {
			t.Errorf("Open(%q) succeeded", strings.ReplaceAll(dsn, "s3cret-pw", "***"))
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// A profile's times keep their microseconds, in UTC, across the round
// trip, as the conformance suite asks; finer parts are cut, not rounded.
func TestMicrosecondTimes(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.FixedZone("X", -7*3600))
	p := model.Profile{Username: "jdoe", Area: "primary", State: model.Active, CreatedAt: at}
	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &p) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Profile(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Microsecond).UTC(); got.CreatedAt != want {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
}

// Usernames order by the bytes of their folded form, whatever the
// database's collation (a cluster made with another locale sorts
// differently).
func TestOrderIsByteOrder(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	names := []string{"zoë", "Zoe", "a_b", "a-b", "AB", "Ärne", "émile", "Émile2", "1x", "_u"}
	ps := make([]model.Profile, len(names))
	err := s.WithTx(ctx, func(tx store.Tx) error {
		for i, n := range names {
			ps[i] = model.Profile{Username: n, Area: "primary", State: model.Active}
			if err := tx.Insert(ctx, &ps[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(all); i++ {
		if a, b := model.FoldUsername(all[i-1].Username), model.FoldUsername(all[i].Username); a >= b {
			t.Errorf("%q before %q: not in byte order", a, b)
		}
	}
}

// Inserts are buffered and sent with COPY: a duplicate of a stored
// username found there is still ErrDuplicate naming the username, and the
// transaction writes nothing. Within one buffer the second Insert is
// refused at once.
func TestBufferedInsertDuplicates(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	taken := model.Profile{Username: "taken", Area: "primary", State: model.Active, Source: "hr", ExternalID: "E-taken"}
	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &taken) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dup  model.Profile
		want string
	}{
		{"username", model.Profile{Username: "TAKEN", Area: "primary", State: model.Active}, "TAKEN"},
		{"external id", model.Profile{Username: "other", Area: "primary", State: model.Active, Source: "hr", ExternalID: "E-taken"}, "other"},
	} {
		err := s.WithTx(ctx, func(tx store.Tx) error {
			for i := range 3 * flushAt {
				p := model.Profile{Username: fmt.Sprintf("%s-%d", tc.name, i), Area: "primary", State: model.Active}
				if i == flushAt+7 {
					p = tc.dup
				}
				if err := tx.Insert(ctx, &p); err != nil {
					return err
				}
				if err := tx.Audit(ctx, store.AuditEntry{RunID: "r", Actor: "sync", Action: "create", Username: p.Username}.Changed(nil, &p)); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, store.ErrDuplicate) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: WithTx = %v, want ErrDuplicate naming %s", tc.name, err, tc.want)
		}
	}
	all, err := s.Profiles(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("after the failed transactions: %d profiles, %v; want 1", len(all), err)
	}
	if es, err := s.Audit(ctx, "r", 0); err != nil || len(es) != 0 {
		t.Errorf("after the failed transactions: %d audit entries, %v; want none", len(es), err)
	}

	err = s.WithTx(ctx, func(tx store.Tx) error {
		a := model.Profile{Username: "twice", Area: "primary", State: model.Active}
		if err := tx.Insert(ctx, &a); err != nil {
			return err
		}
		b := model.Profile{Username: "Twice", Area: "primary", State: model.Active}
		err := tx.Insert(ctx, &b)
		if !errors.Is(err, store.ErrDuplicate) || !strings.Contains(err.Error(), "Twice") {
			t.Errorf("second Insert of one username in a buffer = %v, want ErrDuplicate naming Twice", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Profile(ctx, "twice"); err != nil {
		t.Errorf("the first of the two Inserts: %v", err)
	}
}

// Update refuses a taken key without ending the transaction: the apply
// goes on after a conflict.
func TestUpdateDuplicateKeepsTransaction(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	a := model.Profile{Username: "a", Area: "primary", State: model.Active}
	b := model.Profile{Username: "b", Area: "primary", State: model.Active}
	if err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Insert(ctx, &a); err != nil {
			return err
		}
		return tx.Insert(ctx, &b)
	}); err != nil {
		t.Fatal(err)
	}
	err := s.WithTx(ctx, func(tx store.Tx) error {
		renamed := b
		renamed.Username = "A"
		if err := tx.Update(ctx, &renamed); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("Update to a taken username = %v, want ErrDuplicate", err)
		}
		b.Title = "still writable"
		return tx.Update(ctx, &b)
	})
	if err != nil {
		t.Fatalf("the transaction after a refused Update: %v", err)
	}
	if got, err := s.Profile(ctx, "b"); err != nil || got.Title != "still writable" {
		t.Errorf("b = %+v, %v", got, err)
	}
}

// Reads inside the transaction see its buffered writes, in order.
func TestReadsSeeBufferedWrites(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	err := s.WithTx(ctx, func(tx store.Tx) error {
		var last model.Profile
		for i := range flushAt + 10 {
			last = model.Profile{Username: fmt.Sprintf("u%d", i), Area: "primary", State: model.Active}
			if err := tx.Insert(ctx, &last); err != nil {
				return err
			}
		}
		n, err := tx.CountActive(ctx, []string{"primary"}, []string{"U0"})
		if err != nil {
			return err
		}
		if n != flushAt+9 {
			t.Errorf("CountActive inside the transaction = %d, want %d", n, flushAt+9)
		}
		got, err := tx.Get(ctx, last.ID)
		if err != nil || got.Username != last.Username {
			t.Errorf("Get(%d) = %+v, %v", last.ID, got, err)
		}
		if err := tx.Delete(ctx, last); err != nil {
			return err
		}
		if err := tx.MarkPending(ctx, "crm", last.ID, &last); err != nil {
			return err
		}
		return tx.MarkPending(ctx, "crm", last.ID, &last) // twice in one buffer
	})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.Pending(ctx, "crm")
	if err != nil || len(ps) != 1 || ps[0].Gone == nil {
		t.Errorf("Pending = %+v, %v; want the deleted profile once", ps, err)
	}
}

// TestSeatCheckAcrossProcesses runs the seat check of the conformance suite
// from separate processes, as replicas on several hosts would.
func TestSeatCheckAcrossProcesses(t *testing.T) {
	const limit, procs = 5, 3
	s, dsn := openTemp(t)
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSeatCheckChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SEATSYNC_CHILD_DSN="+dsn, fmt.Sprintf("SEATSYNC_CHILD_ID=%d", i), fmt.Sprintf("SEATSYNC_CHILD_LIMIT=%d", limit))
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
	dsn := os.Getenv("SEATSYNC_CHILD_DSN")
	if dsn == "" {
		t.Skip("only run by TestSeatCheckAcrossProcesses")
	}
	id, limit := os.Getenv("SEATSYNC_CHILD_ID"), 0
	fmt.Sscan(os.Getenv("SEATSYNC_CHILD_LIMIT"), &limit)
	s, err := Open(t.Context(), dsn, nil)
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

// A write transaction whose context ends while it waits for the write
// lock gives up, and leaves nothing held.
func TestWriteLockWaitsForContext(t *testing.T) {
	s, dsn := openTemp(t)
	other, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held := make(chan struct{})
	release := make(chan struct{})
	go func() {
		_ = other.WithTx(t.Context(), func(store.Tx) error { close(held); <-release; return nil })
	}()
	<-held
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = s.WithTx(ctx, func(store.Tx) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(fmt.Sprint(err), "cancel") {
		t.Errorf("WithTx while another process writes, until a deadline = %v, want the deadline", err)
	}
	close(release)
	if err := s.WithTx(t.Context(), func(store.Tx) error { return nil }); err != nil {
		t.Errorf("WithTx after: %v", err)
	}
}

// The store comes back by itself when its server does.
func TestReconnectsAfterRestart(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	defer srv.Close()
	s, err := Open(t.Context(), srv.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetValue(t.Context(), "k", "before"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := s.SetValue(t.Context(), "k", "down"); err == nil {
		t.Fatal("SetValue with the server down succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var v string
	for range 50 {
		if v, _, err = s.Value(t.Context(), "k"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || v != "before" {
		t.Fatalf("Value after the restart = %q, %v", v, err)
	}
	if err := s.SetValue(t.Context(), "k", "after"); err != nil {
		t.Fatalf("SetValue after the restart: %v", err)
	}
}
