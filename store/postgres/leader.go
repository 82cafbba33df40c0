package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/store"
)

// Leader election (store.Elector) for several `seatsync serve` replicas
// on one database.
//
// The leader is the session that holds a session-level advisory lock,
// leaderLockClass/leaderLockObject, on a connection of its own: not one of
// the store's pool, so that no query of the store can end or share the
// session. The session's application_name is the leader's id, so Leader
// reads who leads from pg_locks joined with pg_stat_activity.
//
// The bound. With check c, the leader pings its session every c/2 and
// gives each ping c/4: a ping that fails or takes longer closes the
// connection and Lost. The session is set idle_session_timeout = c
// (PostgreSQL 14 and later), so the server ends a session it has not heard
// from for c, and its lock with it. After a partition that starts just
// after a ping at time 0:
//
//   - the leader stops leading when its next ping times out, at c/2 + c/4
//     = 0.75c at the latest (sooner when the connection fails outright);
//   - the server ends the session and frees the lock at c after the last
//     ping it saw, which came before 0 (so before the leader's ping
//     could fail, it cannot have freed it);
//   - a follower, which campaigns every c, takes the lock at 2c at the
//     latest.
//
// So the old leader has stopped (0.75c) before the lock is free (c): there
// are never two leaders, with a quarter of a check to spare for a slow
// ping or a delayed timer. A leader that dies outright (kill -9, a lost
// host whose kernel resets the socket) frees the lock at once, and is
// replaced within c. A run the old leader had in flight is not stopped by
// this; it is fenced by the store's run lock (AcquireLock with a TTL),
// which no second run can take while the first renews it, and its writes
// go through the same unreachable database.
//
// Before PostgreSQL 14 there is no idle_session_timeout: the session also
// sets the server's TCP keepalives and tcp_user_timeout to about c, so the
// server notices a peer that stopped answering, but a partition that
// leaves the peer's kernel answering (a proxy in between) can keep the
// lock longer. Use PostgreSQL 14 or later for the bound.
//
// The connection must reach PostgreSQL itself or a session pooler: a
// transaction pooler (PgBouncer pool_mode=transaction) does not keep a
// session, nor its advisory lock.

// The advisory lock key of the leadership: two int4 keys, "seat" and
// "lead" in ASCII, so pg_locks shows classid 1936024948, objid 1818583396,
// objsubid 2. No other lock of seatsync may use this pair.
const (
	leaderLockClass  int32 = 0x73656174 // "seat"
	leaderLockObject int32 = 0x6c656164 // "lead"
)

// maxApplicationName is the longest application_name PostgreSQL keeps
// (NAMEDATALEN - 1); a longer one is cut.
const maxApplicationName = 63

// Elector elects one leader among the processes that share a database.
// It is safe for concurrent use.
type Elector struct {
	config *pgx.ConnConfig
	log    *zap.Logger
}

var _ store.Elector = (*Elector)(nil)

// NewElector makes an Elector for the database dsn names. It connects
// only when Campaign or Leader is called.
func NewElector(dsn string, log *zap.Logger) (*Elector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message can quote the DSN, password included.
		return nil, errors.New("leader election: the store's dsn is not a valid PostgreSQL connection string")
	}
	return NewElectorConfig(cfg, log), nil
}

// NewElectorConfig makes an Elector from a parsed connection
// configuration, which it copies.
func NewElectorConfig(cfg *pgx.ConnConfig, log *zap.Logger) *Elector {
	return &Elector{config: cfg.Copy(), log: log.Named("leader")}
}

// applicationName makes id fit application_name: printable ASCII (the
// server replaces anything else with '?'), at most 63 bytes.
func applicationName(id string) string {
	b := make([]byte, 0, len(id))
	for _, r := range id {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	if len(b) > maxApplicationName {
		b = b[:maxApplicationName]
	}
	return string(b)
}

// connect opens a session of its own, named id.
func (e *Elector) connect(ctx context.Context, id string) (*pgx.Conn, error) {
	cfg := e.config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = applicationName(id)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election: connect: %w", err)
	}
	return conn, nil
}

// closeConn ends a session without waiting long for a server that does
// not answer.
func closeConn(conn *pgx.Conn, wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = conn.Close(ctx)
}

// Campaign tries once to take the leadership as id; see the bound above.
// ctx bounds the attempt only; the leadership lasts until it is lost or
// resigned. It returns nil, nil when another process leads.
func (e *Elector) Campaign(ctx context.Context, id string, check time.Duration) (store.Leadership, error) {
	if check <= 0 {
		return nil, fmt.Errorf("leader election: check interval %s is not more than 0", check)
	}
	ctx, cancel := context.WithTimeout(ctx, check)
	defer cancel()
	conn, err := e.connect(ctx, id)
	if err != nil {
		return nil, err
	}
	won, err := e.take(ctx, conn, check)
	if err != nil || !won {
		closeConn(conn, check/4)
		return nil, err
	}
	l := &leadership{conn: conn, check: check, log: e.log.With(zap.String("id", id)),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

// take sets the session's timeouts, then tries the lock. The timeouts
// come first: a session holding the lock is always one the server ends
// when it goes silent.
func (e *Elector) take(ctx context.Context, conn *pgx.Conn, check time.Duration) (bool, error) {
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return false, fmt.Errorf("leader election: server version: %w", err)
	}
	ms := func(d time.Duration) string { return fmt.Sprint(max(d.Milliseconds(), 1)) }
	secs := func(d time.Duration) string { return fmt.Sprint(max(int64(d/time.Second), 1)) }
	set := []string{
		// Server-side TCP checks: these matter before PostgreSQL 14, and
		// for a peer whose host is gone. Ignored on a Unix socket.
		"SET tcp_keepalives_idle = " + secs(check/2),
		"SET tcp_keepalives_interval = " + secs(check/4),
		"SET tcp_keepalives_count = 2",
		"SET tcp_user_timeout = " + ms(check),
		// Nothing on this session may wait: the lock is tried, not
		// waited for, and a ping is a SELECT 1.
		"SET statement_timeout = " + ms(check/4),
	}
	if version >= 140000 {
		set = append(set, "SET idle_session_timeout = "+ms(check))
	} else {
		e.log.Warn("PostgreSQL before 14 has no idle_session_timeout: a partitioned leader's lock is freed by TCP keepalives only, which a proxy between can hide",
			zap.Int("server_version_num", version))
	}
	for _, q := range set {
		if _, err := conn.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("leader election: %s: %w", q, err)
		}
	}
	var won bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", leaderLockClass, leaderLockObject).Scan(&won); err != nil {
		return false, fmt.Errorf("leader election: try the lock: %w", err)
	}
	return won, nil
}

// leaderQuery names the session holding the lock in this database.
const leaderQuery = `SELECT a.application_name
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2`

// Leader names the process that leads now, "" when none does. It opens
// a short session of its own.
func (e *Elector) Leader(ctx context.Context) (string, error) {
	conn, err := e.connect(ctx, "seatsync leader lookup")
	if err != nil {
		return "", err
	}
	defer closeConn(conn, time.Second)
	var name string
	// The lock keys are int4; pg_locks shows them as oid.
	err = conn.QueryRow(ctx, leaderQuery, uint32(leaderLockClass), uint32(leaderLockObject)).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("leader election: read the leader: %w", err)
	}
	return strings.TrimSpace(name), nil
}

// leadership is a won Campaign: the session holding the lock, checked by
// watch, which alone uses conn until it returns.
type leadership struct {
	conn  *pgx.Conn
	check time.Duration
	log   *zap.Logger

	lost     chan struct{} // closed when the leadership ends
	stop     chan struct{} // closed by Resign
	done     chan struct{} // closed when watch returns
	stopOnce sync.Once
}

func (l *leadership) Lost() <-chan struct{} { return l.lost }

// Resign stops the checks, unlocks and ends the session, so another
// process can take over at its next campaign. It waits for a ping in
// flight (at most check/4), and is safe to call more than once.
func (l *leadership) Resign() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// watch pings the session every check/2, each ping given check/4, until
// one fails or Resign; then it ends the session and closes lost.
func (l *leadership) watch() {
	defer close(l.done)
	defer close(l.lost)
	t := time.NewTicker(l.check / 2)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			ctx, cancel := context.WithTimeout(context.Background(), l.check/4)
			_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", leaderLockClass, leaderLockObject)
			cancel()
			if err != nil {
				l.log.Info("resign: unlock failed; ending the session frees the lock", zap.Error(err))
			}
			closeConn(l.conn, l.check/4)
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.check/4)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				l.log.Warn("the leadership's session failed its check; no longer leading", zap.Error(err))
				closeConn(l.conn, l.check/4)
				return
			}
		}
	}
}
