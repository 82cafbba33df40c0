package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// write runs fn in one write transaction (BEGIN IMMEDIATE), commits if fn
// returns nil and rolls back otherwise, also when fn panics (the panic
// then goes on). fn's error is returned as it is.
//
// fn must not start another write transaction on the same Store: it would
// wait for itself.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: begin: %w", ctx.Err())
	}
	defer func() { <-s.writer }()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && err != nil {
			err = errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// database/sql rolled back when ctx ended; say why.
			return fmt.Errorf("sqlite: commit: %w: %w", ctxErr, err)
		}
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// WithTx runs fn in one write transaction. Write transactions are
// serialised across goroutines, Store handles and processes, so a count
// read inside fn stays true until fn returns. fn must not call WithTx (or
// another writing method of the Store) itself.
func (s *Store) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	return s.write(ctx, func(sqlTx *sql.Tx) error {
		t := &tx{tx: sqlTx, counts: store.CountChanges{}}
		if err := fn(t); err != nil {
			return err
		}
		ctx, err := t.lock(ctx)
		if err != nil {
			return err
		}
		defer t.mu.Unlock()
		return t.writeCounts(ctx)
	})
}

// The statements a tx prepares once and reuses for every call.
type stmtKind int

const (
	stmtInsert stmtKind = iota
	stmtUpdate
	stmtDelete
	stmtGet
	stmtCount
	stmtAudit
	stmtMark
	stmtGrantProfile
	stmtGrantSet
	stmtGrantDelete
	stmtCounted
	stmtCountAdd
	numStmts
)

const (
	insertSQL = `INSERT INTO profiles (version, username, username_fold, email, given_name,
		family_name, display_name, title, department, groups, attributes, area, state,
		block_reason, source, external_id, queued_at, activated_at, blocked_at, created_at,
		updated_at)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	updateSQL = `UPDATE profiles SET version = version + 1, username = ?, username_fold = ?,
		email = ?, given_name = ?, family_name = ?, display_name = ?, title = ?, department = ?,
		groups = ?, attributes = ?, area = ?, state = ?, block_reason = ?, source = ?,
		external_id = ?, queued_at = ?, activated_at = ?, blocked_at = ?, created_at = ?,
		updated_at = ?
		WHERE id = ? AND version = ?`
	deleteSQL = `DELETE FROM profiles WHERE id = ? AND version = ? RETURNING area, source, state`
	// The counted columns of a profile before an update changes them.
	countedSQL  = `SELECT area, source, state FROM profiles WHERE id = ? AND version = ?`
	countAddSQL = `INSERT INTO profile_counts (area, source, active, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (area, source, active) DO UPDATE SET n = n + excluded.n`
	getSQL = `SELECT ` + profileRecord + ` FROM profiles WHERE id = ?`
	// Counted as all active minus the active exempt ones: the first count
	// reads a few rows of profile_counts, the second looks up the few
	// exempt usernames, so a seat check reads no more for a million
	// profiles than for ten.
	countSQL = `SELECT
		(SELECT ifnull(sum(n), 0) FROM profile_counts
			WHERE area IN (SELECT value FROM json_each(?1)) AND active)
		- (SELECT count(*) FROM profiles
			WHERE username_fold IN (SELECT value FROM json_each(?2))
			AND area IN (SELECT value FROM json_each(?1)) AND state = 'active')`
	// before and after are bound as bytes, without a copy, and stored as
	// TEXT (a BLOB would read as JSONB to SQLite's JSON functions).
	auditSQL = `INSERT INTO audit (run_id, at, actor, action, username, reason, before, after)
		VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT))`
)

// tx is a store.Tx on one *sql.Tx.
type tx struct {
	tx *sql.Tx

	// mu serialises the methods, which share the prepared statements and
	// the scratch space below. (The connection runs one statement at a
	// time anyway.)
	mu    sync.Mutex
	stmts [numStmts]*sql.Stmt
	args  []any  // argument list of the last Insert or Update
	buf   []byte // JSON being encoded
	// counts are the changes to profile_counts not written yet: they go
	// before a count and before the commit.
	counts store.CountChanges
}

// writeCounts writes the changes to profile_counts the transaction made
// since the last time. The caller holds t.mu.
func (t *tx) writeCounts(ctx context.Context) error {
	if len(t.counts) == 0 {
		return nil
	}
	st, err := t.stmt(ctx, stmtCountAdd, countAddSQL)
	if err != nil {
		return fmt.Errorf("sqlite: count profiles: %w", err)
	}
	for k, n := range t.counts {
		if _, err := st.ExecContext(ctx, k.Area, k.Source, k.Active, n); err != nil {
			return fmt.Errorf("sqlite: count profiles: %w", err)
		}
	}
	clear(t.counts)
	return nil
}

// lock takes t.mu and returns the context to run statements with: ctx
// without its cancellation, once ctx has been checked. modernc.org/sqlite
// starts a goroutine to watch every statement's cancellable context, which
// would double the cost of the many tiny statements of a large apply.
// Nothing is lost: the statements are short, and database/sql rolls the
// whole transaction back as soon as WithTx's context ends.
func (t *tx) lock(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	return context.WithoutCancel(ctx), nil
}

// stmt returns the transaction's prepared statement of kind k, preparing
// query on first use. Statements close with the transaction. t.mu must be
// held.
func (t *tx) stmt(ctx context.Context, k stmtKind, query string) (*sql.Stmt, error) {
	if st := t.stmts[k]; st != nil {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[k] = st
	return st, nil
}

// json returns the JSON t.buf holds after encode, as a string.
func (t *tx) json(encode func([]byte) []byte) string {
	t.buf = encode(t.buf[:0])
	return string(t.buf)
}

// profileArgs lists p's columns in the order insertSQL and updateSQL name
// them (from username to updated_at), in t.args. t.mu must be held.
func (t *tx) profileArgs(p *model.Profile) ([]any, error) {
	if p.Username == "" {
		return nil, errors.New("empty username")
	}
	for _, f := range [...]struct{ name, value string }{
		{"username", p.Username}, {"email", p.Email}, {"given_name", p.GivenName},
		{"family_name", p.FamilyName}, {"display_name", p.DisplayName}, {"title", p.Title},
		{"department", p.Department}, {"area", p.Area}, {"state", string(p.State)},
		{"block_reason", string(p.BlockReason)}, {"source", p.Source}, {"external_id", p.ExternalID},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return nil, fmt.Errorf("%s %q contains a NUL byte", f.name, f.value)
		}
	}
	if p.State != model.Active && p.State != model.Blocked {
		return nil, fmt.Errorf("state %q is neither %s nor %s", p.State, model.Active, model.Blocked)
	}
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{
		{"queued_at", p.QueuedAt}, {"activated_at", p.ActivatedAt}, {"blocked_at", p.BlockedAt},
		{"created_at", p.CreatedAt}, {"updated_at", p.UpdatedAt},
	} {
		if err := checkTime(t.name, t.t); err != nil {
			return nil, err
		}
	}
	var groups, attrs any // NULL for nil
	if p.Groups != nil {
		groups = t.json(func(b []byte) []byte { return jsontext.AppendStrings(b, p.Groups, false) })
	}
	if p.Attributes != nil {
		attrs = t.json(func(b []byte) []byte { return jsontext.AppendObject(b, p.Attributes, false) })
	}
	t.args = append(t.args[:0],
		p.Username, model.FoldUsername(p.Username), p.Email, p.GivenName, p.FamilyName,
		p.DisplayName, p.Title, p.Department, groups, attrs, p.Area, string(p.State),
		string(p.BlockReason), p.Source, p.ExternalID, timeArg(p.QueuedAt),
		timeArg(p.ActivatedAt), timeArg(p.BlockedAt), timeArg(p.CreatedAt), timeArg(p.UpdatedAt))
	return t.args, nil
}

// duplicate turns a UNIQUE violation into store.ErrDuplicate, saying which
// of the profile's keys is taken. Other errors come back as they are.
func duplicate(err error, p *model.Profile) error {
	var se *sqlite.Error
	if !errors.As(err, &se) || (se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE && se.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return err
	}
	if strings.Contains(se.Error(), "username_fold") {
		return fmt.Errorf("%w: another profile has the username %s (compared case-insensitively)",
			store.ErrDuplicate, p.Username)
	}
	if strings.Contains(se.Error(), "external_id") {
		return fmt.Errorf("%w: another profile has source %s external id %s",
			store.ErrDuplicate, p.Source, p.ExternalID)
	}
	return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
}

// CountActive counts the active profiles of areas whose username is not in
// exempt (compared case-insensitively).
func (t *tx) CountActive(ctx context.Context, areas []string, exempt []string) (int, error) {
	ctx, err := t.lock(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count active profiles: %w", err)
	}
	defer t.mu.Unlock()
	if err := t.writeCounts(ctx); err != nil {
		return 0, err
	}
	st, err := t.stmt(ctx, stmtCount, countSQL)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count active profiles: %w", err)
	}
	folded := make([]string, len(exempt))
	for i, u := range exempt {
		folded[i] = model.FoldUsername(u)
	}
	var n int
	if err := st.QueryRowContext(ctx, jsonList(areas), jsonList(folded)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count active profiles: %w", err)
	}
	return n, nil
}

// Get reads the profile with id.
func (t *tx) Get(ctx context.Context, id int64) (model.Profile, error) {
	ctx, err := t.lock(ctx)
	if err != nil {
		return model.Profile{}, fmt.Errorf("sqlite: get profile %d: %w", id, err)
	}
	defer t.mu.Unlock()
	st, err := t.stmt(ctx, stmtGet, getSQL)
	if err != nil {
		return model.Profile{}, fmt.Errorf("sqlite: get profile %d: %w", id, err)
	}
	p, err := scanProfile(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return model.Profile{}, fmt.Errorf("sqlite: get profile %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return model.Profile{}, fmt.Errorf("sqlite: get profile %d: %w", id, err)
	}
	return p, nil
}

// execProfile runs the insert or update statement k with p's columns,
// then extra arguments. A unique violation becomes store.ErrDuplicate.
func (t *tx) execProfile(ctx context.Context, p *model.Profile, k stmtKind, query string, extra ...any) (sql.Result, error) {
	ctx, err := t.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	args, err := t.profileArgs(p)
	if err != nil {
		return nil, err
	}
	st, err := t.stmt(ctx, k, query)
	if err != nil {
		return nil, err
	}
	t.args = append(args, extra...)
	res, err := st.ExecContext(ctx, t.args...)
	if err != nil {
		return nil, duplicate(err, p)
	}
	return res, nil
}

// Insert stores p as a new profile and sets p.ID and p.Version (1). Every
// other field, timestamps included, is stored as given.
func (t *tx) Insert(ctx context.Context, p *model.Profile) error {
	res, err := t.execProfile(ctx, p, stmtInsert, insertSQL)
	if err == nil {
		p.ID, err = res.LastInsertId()
	}
	if err != nil {
		return fmt.Errorf("sqlite: insert profile %s: %w", p.Username, err)
	}
	p.Version = 1
	t.mu.Lock()
	t.counts.Add(p, 1)
	t.mu.Unlock()
	return nil
}

// counted reads the counted columns of the profile with id if it still
// has version; ok is false when it has not (or is gone).
func (t *tx) counted(ctx context.Context, id, version int64) (k store.CountKey, ok bool, err error) {
	ctx, err = t.lock(ctx)
	if err != nil {
		return k, false, err
	}
	defer t.mu.Unlock()
	st, err := t.stmt(ctx, stmtCounted, countedSQL)
	if err != nil {
		return k, false, err
	}
	var state string
	switch err := st.QueryRowContext(ctx, id, version).Scan(&k.Area, &k.Source, &state); {
	case errors.Is(err, sql.ErrNoRows):
		return k, false, nil
	case err != nil:
		return k, false, err
	}
	k.Active = state == string(model.Active)
	return k, true, nil
}

// Update writes p over the stored profile with p.ID if that still has
// p.Version, and bumps p.Version; store.ErrConflict otherwise.
func (t *tx) Update(ctx context.Context, p *model.Profile) error {
	prev, ok, err := t.counted(ctx, p.ID, p.Version)
	var res sql.Result
	if err == nil && ok {
		res, err = t.execProfile(ctx, p, stmtUpdate, updateSQL, p.ID, p.Version)
	}
	var n int64
	if err == nil && ok {
		n, err = res.RowsAffected()
	}
	if err == nil && n == 0 {
		err = fmt.Errorf("%w (id %d, version %d)", store.ErrConflict, p.ID, p.Version)
	}
	if err != nil {
		return fmt.Errorf("sqlite: update profile %s: %w", p.Username, err)
	}
	p.Version++
	t.mu.Lock()
	t.counts.AddKey(prev, -1)
	t.counts.Add(p, 1)
	t.mu.Unlock()
	return nil
}

// Delete removes the profile with p.ID if it still has p.Version;
// store.ErrConflict otherwise (also when it is gone already).
func (t *tx) Delete(ctx context.Context, p model.Profile) error {
	wrap := func(err error) error { return fmt.Errorf("sqlite: delete profile %s: %w", p.Username, err) }
	ctx, err := t.lock(ctx)
	if err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	st, err := t.stmt(ctx, stmtDelete, deleteSQL)
	if err != nil {
		return wrap(err)
	}
	var k store.CountKey
	var state string
	switch err := st.QueryRowContext(ctx, p.ID, p.Version).Scan(&k.Area, &k.Source, &state); {
	case errors.Is(err, sql.ErrNoRows):
		return wrap(fmt.Errorf("%w (id %d, version %d)", store.ErrConflict, p.ID, p.Version))
	case err != nil:
		return wrap(err)
	}
	k.Active = state == string(model.Active)
	t.counts.AddKey(k, -1)
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM product_grants WHERE profile_id = ?`, p.ID); err != nil {
		return wrap(fmt.Errorf("its product grants: %w", err))
	}
	return nil
}

// Audit appends e to the audit log; e.Seq and e.Fields are ignored (the
// store numbers entries, and Fields are read back from Before and After).
func (t *tx) Audit(ctx context.Context, e store.AuditEntry) error {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: audit %s %s: %w", e.Action, e.Username, err)
	}
	if err := checkTime("at", e.At); err != nil {
		return wrap(err)
	}
	ctx, err := t.lock(ctx)
	if err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	st, err := t.stmt(ctx, stmtAudit, auditSQL)
	if err != nil {
		return wrap(err)
	}
	if _, err := st.ExecContext(ctx, e.RunID, timeArg(e.At), e.Actor, e.Action, e.Username,
		e.Reason, bytesArg(e.Before), bytesArg(e.After)); err != nil {
		return wrap(err)
	}
	return nil
}

// jsonArg binds JSON as TEXT, NULL for nil (a []byte would be a BLOB,
// which SQLite's JSON functions take for JSONB).
func jsonArg(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return string(j)
}

// bytesArg binds JSON as bytes, NULL for nil.
func bytesArg(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return []byte(j)
}
