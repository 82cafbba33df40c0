package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// write runs fn in one write transaction and commits if fn returns nil;
// it rolls back otherwise, also when fn panics (the panic then goes on).
//
// Every write transaction first takes one transaction-level advisory lock
// (lockClass, lockWrite), so write transactions run one at a time across
// goroutines, Store handles and processes, as the sqlite store's do. That
// is the lock on the store's seat state the interface promises: a count
// read inside WithTx stays true until it returns, because nobody else
// writes meanwhile. It was chosen over the alternatives:
//   - SERIALIZABLE with retry cannot retry fn: an apply's fn has effects
//     outside the database (its report), and a seat check that failed
//     late would throw away a whole batch;
//   - row locks (SELECT ... FOR UPDATE) cannot lock the rows a count does
//     not see yet: a profile unblocked into the pool by another process.
//
// Readers never wait for it: they read the last commit (READ COMMITTED),
// as readers of the sqlite store's WAL do. The lock goes with the
// transaction, also when the connection or its process dies.
func (s *Store) write(ctx context.Context, fn func(pgx.Tx) error) (err error) {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("postgres: begin: %w", ctx.Err())
	}
	defer func() { <-s.writer }()

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// Rolled back on a context of its own: a cancelled ctx must not
		// leave the transaction (and its lock) open. pgx closes the
		// connection if the rollback fails.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rbErr := tx.Rollback(rctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err != nil && !conn.Conn().IsClosed() {
			err = errors.Join(err, fmt.Errorf("postgres: rollback: %w", rbErr))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClass, lockWrite); err != nil {
		return fmt.Errorf("postgres: take the write lock: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// WithTx runs fn in one write transaction; see write. fn must not call
// WithTx (or another writing method of the Store) itself.
func (s *Store) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	return s.write(ctx, func(ptx pgx.Tx) error {
		t := &tx{ctx: ctx, tx: ptx, buf: newFlushBuf(), counts: store.CountChanges{}}
		// Whatever happens, the background flush is over before the
		// connection goes back (a panic in fn included).
		defer t.wait()
		if err := fn(t); err != nil {
			return err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if err := t.syncLocked(ctx); err != nil {
			return err
		}
		return t.writeCounts(ctx)
	})
}

// flushAt is how many buffered rows (profiles, audit entries and pending
// pushes together) a tx sends at once. A 100,000-person first sync sends
// a hundred COPYs of each table, each while seatsync builds the next.
const flushAt = 2000

// tx is a store.Tx on one PostgreSQL transaction.
//
// The many small writes of a large apply are buffered: Insert, Audit and
// MarkPending keep their rows in Go, and once there are flushAt of them
// they go to the server with COPY (profiles, audit) and one multi-row
// upsert (pending pushes) on a goroutine of their own, while the apply
// fills the next buffer: the server does the writes on its own core. Every
// other method (a read, an Update, a Delete) and the commit first wait for
// that flush and send what is buffered, so each sees the transaction's
// writes in order. Profile IDs and push numbers are taken from their
// sequences in blocks ahead, so Insert and MarkPending need no round trip.
//
// A flush that fails fails the transaction: every later method returns
// its error, and WithTx rolls back. That is how an Insert of a username
// already stored surfaces: store.ErrDuplicate, naming that username, from
// the call that flushed it (two Inserts of one username in the buffer are
// refused at once, by the second Insert).
type tx struct {
	ctx context.Context // WithTx's: the background flushes run on it
	tx  pgx.Tx

	mu  sync.Mutex
	err error // the transaction failed: nothing more can be done in it

	buf      *flushBuf
	inflight chan error // the background flush's result; nil when none runs

	ids, seqs         []int64 // taken from profiles_id_seq and target_seq, not used yet
	idBlock, seqBlock int

	// counts are the changes to profile_counts not written yet: they go
	// before a count and before the commit.
	counts store.CountChanges
}

const countAddSQL = `INSERT INTO profile_counts (area, source, active, n)
	SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bigint[])
	ON CONFLICT (area, source, active) DO UPDATE SET n = profile_counts.n + excluded.n`

// recountSQL counts the profiles into profile_counts from scratch.
const recountSQL = `DELETE FROM profile_counts;
INSERT INTO profile_counts (area, source, active, n)
	SELECT area, source, state = 'active', count(*) FROM profiles GROUP BY area, source, state = 'active'`

// writeCounts writes the changes to profile_counts the transaction made
// since the last time, in one statement. The caller holds t.mu.
func (t *tx) writeCounts(ctx context.Context) error {
	if len(t.counts) == 0 {
		return nil
	}
	var areas, sources []string
	var active []bool
	var ns []int64
	for k, n := range t.counts {
		areas, sources, active, ns = append(areas, k.Area), append(sources, k.Source), append(active, k.Active), append(ns, int64(n))
	}
	if _, err := t.tx.Exec(ctx, countAddSQL, areas, sources, active, ns); err != nil {
		t.err = err
		return fmt.Errorf("postgres: count profiles: %w", err)
	}
	clear(t.counts)
	return nil
}

// flushBuf holds the rows a tx has not sent yet.
type flushBuf struct {
	profiles [][]any
	audit    [][]any
	marks    markRows
	// folds and keys map the folded usernames and (source, external id)
	// of the buffered profiles to their usernames.
	folds map[string]string
	keys  map[[2]string]string
}

func newFlushBuf() *flushBuf {
	return &flushBuf{folds: map[string]string{}, keys: map[[2]string]string{}, marks: markRows{at: map[markKey]int{}}}
}

func (b *flushBuf) rows() int { return len(b.profiles) + len(b.audit) + len(b.marks.seq) }

// markRows are pending pushes as the columns of one upsert; at indexes
// them by target and profile, since one statement cannot upsert a row
// twice (a profile marked twice keeps its last mark).
type markRows struct {
	target  []string
	profile []int64
	seq     []int64
	gone    []pgtype.Text
	marked  []time.Time
	at      map[markKey]int
}

type markKey struct {
	target string
	id     int64
}

var profileCopyCols = []string{"id", "version", "username", "username_fold", "email", "given_name",
	"family_name", "display_name", "title", "department", "groups", "attributes", "area", "state",
	"block_reason", "source", "external_id", "queued_at", "activated_at", "blocked_at", "created_at",
	"updated_at"}

var auditCopyCols = []string{"run_id", "at", "actor", "action", "username", "username_fold", "reason", "before", "after"}

const markSQL = `INSERT INTO target_pending (target, profile_id, seq, gone, marked_at)
	SELECT t, p, s, g::json, m FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[]) AS u(t, p, s, g, m)
	ON CONFLICT (target, profile_id) DO UPDATE SET seq = excluded.seq, gone = excluded.gone, failed = false`

// begin takes t.mu for one method, after checking that the transaction
// can go on.
func (t *tx) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		return fmt.Errorf("the transaction failed earlier: %w", err)
	}
	return nil
}

// wait waits for the background flush, if one runs, and keeps its error.
func (t *tx) wait() {
	if t.inflight == nil {
		return
	}
	if err := <-t.inflight; err != nil && t.err == nil {
		t.err = err
	}
	t.inflight = nil
}

// syncLocked waits for the background flush and sends what is buffered,
// so that the next statement sees every write of the transaction.
func (t *tx) syncLocked(ctx context.Context) error {
	t.wait()
	if t.err == nil && t.buf.rows() > 0 {
		b := t.buf
		t.buf = newFlushBuf()
		t.err = t.flush(ctx, b)
	}
	return t.err
}

// maybeFlush starts a background flush once the buffer is full: after
// the previous flush (double buffering), and after topping up the IDs
// while the connection is free, so the apply does not stop for them.
func (t *tx) maybeFlush() error {
	if t.buf.rows() < flushAt {
		return nil
	}
	t.wait()
	if t.err != nil {
		return t.err
	}
	if len(t.ids) < flushAt {
		if err := t.takeIDs(t.ctx, &t.ids, &t.idBlock, "profiles_id_seq"); err != nil {
			t.err = err
			return err
		}
	}
	b := t.buf
	t.buf = newFlushBuf()
	done := make(chan error, 1)
	t.inflight = done
	go func() { done <- t.flush(t.ctx, b) }()
	return nil
}

// flush sends b's rows. It runs alone on the connection.
func (t *tx) flush(ctx context.Context, b *flushBuf) error {
	if len(b.profiles) > 0 {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"profiles"}, profileCopyCols, pgx.CopyFromRows(b.profiles)); err != nil {
			return copyError(err, b)
		}
	}
	if len(b.audit) > 0 {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"audit"}, auditCopyCols, pgx.CopyFromRows(b.audit)); err != nil {
			return fmt.Errorf("write %d audit entries: %w", len(b.audit), err)
		}
	}
	if m := &b.marks; len(m.seq) > 0 {
		if _, err := t.tx.Exec(ctx, markSQL, m.target, m.profile, m.seq, m.gone, m.marked); err != nil {
			return fmt.Errorf("mark %d pushes pending: %w", len(m.seq), err)
		}
	}
	return nil
}

// copyError names the profile a failed COPY of b's profiles stopped at:
// PostgreSQL says which line, and which unique index for a duplicate.
func copyError(err error, b *flushBuf) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("insert %d profiles: %w", len(b.profiles), err)
	}
	var row []any
	if _, after, ok := strings.Cut(pe.Where, "line "); ok {
		digits := after
		if i := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = after[:i]
		}
		if n, err := strconv.Atoi(digits); err == nil && n >= 1 && n <= len(b.profiles) {
			row = b.profiles[n-1]
		}
	}
	if row == nil {
		return fmt.Errorf("insert %d profiles: %w", len(b.profiles), err)
	}
	username, source, ext := row[2].(string), row[15].(string), row[16].(string)
	if pe.Code == "23505" { // unique_violation
		return duplicate(pe.ConstraintName, username, source, ext)
	}
	return fmt.Errorf("insert profile %s: %w", username, err)
}

// duplicate is the store.ErrDuplicate of a profile whose key the unique
// index named index holds already.
func duplicate(index, username, source, ext string) error {
	if strings.Contains(index, "external_id") {
		return fmt.Errorf("%w: another profile has source %s external id %s (writing %s)",
			store.ErrDuplicate, source, ext, username)
	}
	return fmt.Errorf("%w: another profile has the username %s (compared case-insensitively)",
		store.ErrDuplicate, username)
}

// takeIDs tops *stock up with a block of numbers from seq, twice as many
// each time (from 64 to 8 times flushAt), so a small transaction takes few
// and a large one few round trips. Numbers not used are skipped for good,
// which sequences allow: they are only ever unique and increasing.
func (t *tx) takeIDs(ctx context.Context, stock *[]int64, block *int, seq string) error {
	*block = min(max(2**block, 64), 8*flushAt)
	rows, err := t.tx.Query(ctx, `SELECT nextval('`+seq+`') FROM generate_series(1, $1)`, *block)
	if err != nil {
		return fmt.Errorf("take numbers from %s: %w", seq, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("take numbers from %s: %w", seq, err)
	}
	*stock = append(*stock, ids...)
	return nil
}

// nextNumber takes one number from *stock, topping it up first when it is
// empty.
func (t *tx) nextNumber(ctx context.Context, stock *[]int64, block *int, seq string) (int64, error) {
	if len(*stock) == 0 {
		t.wait()
		if t.err != nil {
			return 0, t.err
		}
		if err := t.takeIDs(ctx, stock, block, seq); err != nil {
			t.err = err
			return 0, err
		}
	}
	n := (*stock)[0]
	*stock = (*stock)[1:]
	return n, nil
}

// profileArgs lists p's columns from username to updated_at, in the order
// of profileCopyCols and updateSQL.
func profileArgs(p *model.Profile, fold string) ([]any, error) {
	if err := checkText(p); err != nil {
		return nil, err
	}
	attrs, err := attributesArg(p.Attributes)
	if err != nil {
		return nil, err
	}
	return []any{p.Username, fold, p.Email, p.GivenName, p.FamilyName, p.DisplayName, p.Title,
		p.Department, groupsArg(p.Groups), attrs, p.Area, string(p.State), string(p.BlockReason),
		p.Source, p.ExternalID, timeArg(p.QueuedAt), timeArg(p.ActivatedAt), timeArg(p.BlockedAt),
		timeArg(p.CreatedAt), timeArg(p.UpdatedAt)}, nil
}

// Insert stores p as a new profile and sets p.ID and p.Version (1). The
// row is buffered (see tx).
func (t *tx) Insert(ctx context.Context, p *model.Profile) error {
	wrap := func(err error) error { return fmt.Errorf("postgres: insert profile %s: %w", p.Username, err) }
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	fold := model.FoldUsername(p.Username)
	args, err := profileArgs(p, fold)
	if err != nil {
		return wrap(err)
	}
	b := t.buf
	if _, ok := b.folds[fold]; ok {
		return wrap(duplicate("username_fold", p.Username, p.Source, p.ExternalID))
	}
	key := [2]string{p.Source, p.ExternalID}
	if _, ok := b.keys[key]; ok && p.Source != "" {
		return wrap(duplicate("external_id", p.Username, p.Source, p.ExternalID))
	}
	id, err := t.nextNumber(ctx, &t.ids, &t.idBlock, "profiles_id_seq")
	if err != nil {
		return wrap(err)
	}
	b = t.buf // nextNumber may have waited, not flushed: the same buffer
	b.profiles = append(b.profiles, append([]any{id, int64(1)}, args...))
	t.counts.Add(p, 1) // a buffer that fails to go fails the transaction, counts and all
	b.folds[fold] = p.Username
	if p.Source != "" {
		b.keys[key] = p.Username
	}
	p.ID, p.Version = id, 1
	if err := t.maybeFlush(); err != nil {
		return wrap(err)
	}
	return nil
}

const updateSQL = `UPDATE profiles SET version = version + 1, username = $1, username_fold = $2,
	email = $3, given_name = $4, family_name = $5, display_name = $6, title = $7, department = $8,
	groups = $9, attributes = $10, area = $11, state = $12, block_reason = $13, source = $14,
	external_id = $15, queued_at = $16, activated_at = $17, blocked_at = $18, created_at = $19,
	updated_at = $20
	FROM (SELECT area, source, state FROM profiles WHERE id = $21) AS prev
	WHERE id = $21 AND version = $22
	AND NOT EXISTS (SELECT 1 FROM profiles o WHERE o.username_fold = $2 AND o.id <> $21)
	AND ($14 = '' OR NOT EXISTS (SELECT 1 FROM profiles o
		WHERE o.source = $14 AND o.external_id = $15 AND o.source <> '' AND o.id <> $21))
	RETURNING prev.area, prev.source, prev.state = 'active'`

// Update writes p over the stored profile with p.ID if that still has
// p.Version, and bumps p.Version; store.ErrConflict otherwise. A username
// or external id another profile has is checked for in the statement, not
// left to the unique index, so that store.ErrDuplicate leaves the
// transaction usable (a failed statement would end it); the write lock
// keeps the check true.
func (t *tx) Update(ctx context.Context, p *model.Profile) error {
	wrap := func(err error) error { return fmt.Errorf("postgres: update profile %s: %w", p.Username, err) }
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	fold := model.FoldUsername(p.Username)
	args, err := profileArgs(p, fold)
	if err != nil {
		return wrap(err)
	}
	if err := t.syncLocked(ctx); err != nil {
		return wrap(err)
	}
	var prev store.CountKey
	err = t.tx.QueryRow(ctx, updateSQL, append(args, p.ID, p.Version)...).Scan(&prev.Area, &prev.Source, &prev.Active)
	switch {
	case err == nil:
		p.Version++
		t.counts.AddKey(prev, -1)
		t.counts.Add(p, 1)
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		t.err = err
		return wrap(err)
	}
	// Not written: a stale version, or a key another profile holds.
	var current bool
	var taken string
	err = t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM profiles WHERE id = $1 AND version = $2),
		COALESCE((SELECT 'username_fold' FROM profiles WHERE username_fold = $3 AND id <> $1),
			(SELECT 'external_id' FROM profiles WHERE $4 <> '' AND source = $4 AND external_id = $5 AND id <> $1), '')`,
		p.ID, p.Version, fold, p.Source, p.ExternalID).Scan(&current, &taken)
	switch {
	case err != nil:
		t.err = err
		return wrap(err)
	case current && taken != "":
		return wrap(duplicate(taken, p.Username, p.Source, p.ExternalID))
	}
	return wrap(fmt.Errorf("%w (id %d, version %d)", store.ErrConflict, p.ID, p.Version))
}

// Delete removes the profile with p.ID if it still has p.Version;
// store.ErrConflict otherwise (also when it is gone already).
func (t *tx) Delete(ctx context.Context, p model.Profile) error {
	wrap := func(err error) error { return fmt.Errorf("postgres: delete profile %s: %w", p.Username, err) }
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.syncLocked(ctx); err != nil {
		return wrap(err)
	}
	var k store.CountKey
	err := t.tx.QueryRow(ctx, `DELETE FROM profiles WHERE id = $1 AND version = $2 RETURNING area, source, state = 'active'`,
		p.ID, p.Version).Scan(&k.Area, &k.Source, &k.Active)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return wrap(fmt.Errorf("%w (id %d, version %d)", store.ErrConflict, p.ID, p.Version))
	case err != nil:
		t.err = err
		return wrap(err)
	}
	t.counts.AddKey(k, -1)
	if _, err := t.tx.Exec(ctx, `DELETE FROM product_grants WHERE profile_id = $1`, p.ID); err != nil {
		t.err = err
		return wrap(fmt.Errorf("its product grants: %w", err))
	}
	return nil
}

// Get reads the profile with id, seeing the transaction's writes.
func (t *tx) Get(ctx context.Context, id int64) (model.Profile, error) {
	wrap := func(err error) error { return fmt.Errorf("postgres: get profile %d: %w", id, err) }
	if err := t.begin(ctx); err != nil {
		return model.Profile{}, wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.syncLocked(ctx); err != nil {
		return model.Profile{}, wrap(err)
	}
	p, err := newProfileScanner().scan(t.tx.QueryRow(ctx, `SELECT `+profileCols+` FROM profiles WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Profile{}, wrap(store.ErrNotFound)
	}
	if err != nil {
		t.err = err
		return model.Profile{}, wrap(err)
	}
	return p, nil
}

// CountActive counts the active profiles of areas whose username is not in
// exempt (compared case-insensitively), seeing the transaction's writes.
func (t *tx) CountActive(ctx context.Context, areas []string, exempt []string) (int, error) {
	wrap := func(err error) error { return fmt.Errorf("postgres: count active profiles: %w", err) }
	if err := t.begin(ctx); err != nil {
		return 0, wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.syncLocked(ctx); err != nil {
		return 0, wrap(err)
	}
	if err := t.writeCounts(ctx); err != nil {
		return 0, wrap(err)
	}
	folded := make([]string, len(exempt))
	for i, u := range exempt {
		folded[i] = model.FoldUsername(u)
	}
	var n int
	err := t.tx.QueryRow(ctx, countActiveSQL, nonNil(areas), folded).Scan(&n)
	if err != nil {
		t.err = err
		return 0, wrap(err)
	}
	return n, nil
}

// Audit appends e to the audit log; e.Seq and e.Fields are ignored (the
// store numbers entries, in the order they are written, and Fields are
// read back from Before and After). The entry is buffered.
func (t *tx) Audit(ctx context.Context, e store.AuditEntry) error {
	wrap := func(err error) error { return fmt.Errorf("postgres: audit %s %s: %w", e.Action, e.Username, err) }
	if err := checkTime("at", e.At); err != nil {
		return wrap(err)
	}
	for _, s := range []string{e.RunID, e.Actor, e.Action, e.Username, e.Reason} {
		if strings.IndexByte(s, 0) >= 0 {
			return wrap(fmt.Errorf("%q contains a NUL byte", s))
		}
	}
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	t.buf.audit = append(t.buf.audit, []any{e.RunID, timeArg(e.At), e.Actor, e.Action, e.Username,
		model.FoldUsername(e.Username), e.Reason, jsonArg(e.Before), jsonArg(e.After)})
	if err := t.maybeFlush(); err != nil {
		return wrap(err)
	}
	return nil
}

// MarkPending records, with the transaction's other writes, a push of
// the profile with profileID to target. The push is buffered.
func (t *tx) MarkPending(ctx context.Context, target string, profileID int64, gone *model.Profile) error {
	wrap := func(err error) error {
		return fmt.Errorf("postgres: mark profile %d pending for target %s: %w", profileID, target, err)
	}
	if target == "" || profileID <= 0 {
		return wrap(errors.New("no target or no profile id"))
	}
	var g pgtype.Text
	if gone != nil {
		j, err := profileJSON(gone)
		if err != nil {
			return wrap(err)
		}
		g = pgtype.Text{String: j.(string), Valid: true}
	}
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	seq, err := t.nextNumber(ctx, &t.seqs, &t.seqBlock, "target_seq")
	if err != nil {
		return wrap(err)
	}
	m := &t.buf.marks
	if i, ok := m.at[markKey{target, profileID}]; ok {
		m.seq[i], m.gone[i] = seq, g
	} else {
		m.at[markKey{target, profileID}] = len(m.seq)
		m.target = append(m.target, target)
		m.profile = append(m.profile, profileID)
		m.seq = append(m.seq, seq)
		m.gone = append(m.gone, g)
		m.marked = append(m.marked, time.Now())
	}
	if err := t.maybeFlush(); err != nil {
		return wrap(err)
	}
	return nil
}
