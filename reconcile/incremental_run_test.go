package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// changeLog is a directory with a change stream, as a connector that
// reads incrementally sees it: version N is the directory after its Nth
// change, and a cursor "vN" reads the changes after version N.
type changeLog struct {
	versions []map[string]model.Identity // by external id
	asked    []string                    // the cursors reads were given
	fail     error                       // the next read fails with it
	refuse   bool                        // the next read refuses its cursor
	extra    []string                    // delete notices added to the next read
	skips    []connector.Skip            // entries the reads cannot read
}

func (l *changeLog) now() map[string]model.Identity { return l.versions[len(l.versions)-1] }

// set makes a new version in which the people given are added or changed
// and the external ids in gone are deleted.
func (l *changeLog) set(ids []model.Identity, gone ...string) {
	next := map[string]model.Identity{}
	if len(l.versions) > 0 {
		for k, v := range l.now() {
			next[k] = v
		}
	}
	for _, id := range ids {
		next[id.ExternalID] = id
	}
	for _, ext := range gone {
		delete(next, ext)
	}
	l.versions = append(l.versions, next)
}

func sorted(m map[string]model.Identity) []model.Identity {
	out := make([]model.Identity, 0, len(m))
	for _, id := range m {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b model.Identity) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	return out
}

type changeSource struct{ log *changeLog }

func (s changeSource) Pull(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) error {
	for _, sk := range s.log.skips {
		skip(sk)
	}
	for _, id := range sorted(s.log.now()) {
		if err := emit(id); err != nil {
			return err
		}
	}
	return nil
}

func (s changeSource) PullChanges(ctx context.Context, cursor string, sink connector.ChangeSink) (connector.Result, error) {
	l := s.log
	l.asked = append(l.asked, cursor)
	if err := l.fail; err != nil {
		l.fail = nil
		return connector.Result{}, err
	}
	last := fmt.Sprintf("v%d", len(l.versions)-1)
	var from int
	if _, err := fmt.Sscanf(cursor, "v%d", &from); err != nil || l.refuse || from >= len(l.versions) {
		res := connector.Result{Cursor: last, Full: true}
		if cursor != "" {
			res.Fallback = "the server refused the cursor " + cursor
		}
		l.refuse = false
		return res, s.Pull(ctx, sink.Upsert, sink.Skip)
	}
	for _, sk := range l.skips {
		sink.Skip(sk)
	}
	old, now := l.versions[from], l.now()
	for _, id := range sorted(now) {
		if prev, ok := old[id.ExternalID]; !ok || fmt.Sprint(prev) != fmt.Sprint(id) {
			if err := sink.Upsert(id); err != nil {
				return connector.Result{}, err
			}
		}
	}
	for _, id := range sorted(old) {
		if _, ok := now[id.ExternalID]; !ok {
			if err := sink.Delete(id.ExternalID); err != nil {
				return connector.Result{}, err
			}
		}
	}
	for _, ext := range l.extra {
		if err := sink.Delete(ext); err != nil {
			return connector.Result{}, err
		}
	}
	l.extra = nil
	return connector.Result{Cursor: last}, nil
}

// noFullRead fails the test when a run reads every profile.
type noFullRead struct {
	store.Store
	t      *testing.T
	forbid bool
}

func (s *noFullRead) Profiles(ctx context.Context) ([]model.Profile, error) {
	if s.forbid {
		s.t.Error("an incremental run read every profile")
	}
	return s.Store.Profiles(ctx)
}

func staffer(ext, username, title string) model.Identity {
	return model.Identity{ExternalID: ext, Username: username, Email: username + "@example.com", Title: title, Enabled: true}
}

// incHarness runs a source that reads incrementally (a changeLog)
// through the runner, into a real store.
type incHarness struct {
	t       *testing.T
	ctx     context.Context
	st      store.Store
	guarded *noFullRead
	l       *changeLog
	clock   time.Time
	r       *reconcile.Runner
}

func incConfig(area string) *config.Config {
	return &config.Config{
		Version:   1,
		Licensing: config.Licensing{Pools: []config.Pool{{Name: "primary", Limit: config.Limit{N: 20}, Areas: []string{"primary", "other"}}}},
		Safety:    config.Safety{MaxDeprovision: config.Threshold{Value: 2, Set: true}},
		Sources:   []config.Source{{Name: "dir", Type: "changes", Area: area, OnLeave: "block", UsernameCase: "lower"}},
	}
}

// newIncHarness starts with ten people in the directory and nothing in
// the store.
func newIncHarness(t *testing.T) *incHarness {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &incHarness{t: t, ctx: context.Background(), st: st, guarded: &noFullRead{Store: st, t: t}, l: &changeLog{},
		clock: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}
	var people []model.Identity
	for i := range 10 {
		people = append(people, staffer(fmt.Sprintf("E%d", i), fmt.Sprintf("user%d", i), "Staff"))
	}
	h.l.set(people)
	h.r = &reconcile.Runner{
		Config: incConfig("primary"),
		Store:  h.guarded,
		Connectors: connector.Registry{"changes": {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			return changeSource{log: h.l}, nil
		}}},
		Log: zap.NewNop(),
		Now: func() time.Time { return h.clock },
	}
	return h
}

func (h *incHarness) cursor() reconcile.Cursor {
	h.t.Helper()
	raw, _, err := h.st.Value(h.ctx, reconcile.CursorKey("dir"))
	if err != nil {
		h.t.Fatal(err)
	}
	var c reconcile.Cursor
	if raw != "" {
		if c, err = reconcile.ParseCursor(raw); err != nil {
			h.t.Fatalf("cursor %q: %v", raw, err)
		}
	}
	return c
}

// run runs once, a minute after the last run, and wants err wantErr.
func (h *incHarness) run(what string, opt reconcile.Options, wantErr error) *reconcile.Report {
	h.t.Helper()
	if opt.Mode == "" {
		opt.Mode = reconcile.ModeSync
	}
	h.clock = h.clock.Add(time.Minute)
	rep, err := h.r.Run(h.ctx, opt)
	if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
		h.t.Fatalf("%s: err = %v, want %v", what, err, wantErr)
	}
	return rep
}

// source checks how the report says the source was read.
func (h *incHarness) source(what string, rep *reconcile.Report, full bool, identities, deletes int, fallback string) {
	h.t.Helper()
	s := rep.Sources[0]
	if s.Full != full || !s.Incremental || s.Identities != identities || s.Deletes != deletes || !strings.Contains(s.IncrementalFallback, fallback) ||
		(fallback == "" && s.IncrementalFallback != "") {
		h.t.Errorf("%s: source %+v; want full %v, incremental, %d identities, %d deletes, fallback %q", what, s, full, identities, deletes, fallback)
	}
}

func (h *incHarness) lastAsked(what, want string) {
	h.t.Helper()
	if got := h.l.asked[len(h.l.asked)-1]; got != want {
		h.t.Errorf("%s: the read was given cursor %q, want %q", what, got, want)
	}
}

// TestIncrementalRuns follows a source that reads incrementally through
// the runner: where its cursor goes (only forward, only after a commit),
// when it reads in full, and what the report says.
func TestIncrementalRuns(t *testing.T) {
	h := newIncHarness(t)
	ctx, st := h.ctx, h.st
	rep := h.run("first sync", reconcile.Options{}, nil)
	h.source("first sync", rep, true, 10, 0, "")
	h.lastAsked("first sync", "")
	if c := h.cursor(); c.Position != "v0" || !c.FullAt.Equal(rep.StartedAt) {
		t.Fatalf("after the first sync the cursor is %+v, want v0, read in full at %s", c, rep.StartedAt)
	}

	// A change, an addition and a leaver: only they are planned, and no
	// run reads every profile from here on.
	h.guarded.forbid = true
	h.l.set([]model.Identity{staffer("E1", "user1", "Boss"), staffer("E10", "user10", "Staff")}, "E2")
	h.l.extra = []string{"E404"} // a delete notice for someone the store does not hold
	rep = h.run("plan", reconcile.Options{Mode: reconcile.ModePlan}, nil)
	h.source("plan", rep, false, 2, 2, "")
	if c := h.cursor(); c.Position != "v0" {
		t.Errorf("a plan moved the cursor to %+v", c)
	}
	h.l.extra = []string{"E404"}
	rep = h.run("incremental sync", reconcile.Options{}, nil)
	h.source("incremental sync", rep, false, 2, 2, "")
	h.lastAsked("incremental sync", "v0")
	if got := summarize(rep); got != "block user2 left_source; create user10; update user1" {
		t.Errorf("incremental sync changed: %s", got)
	}
	if rep.Pools[0].UsedBefore != 10 || rep.Pools[0].UsedAfter != 10 || rep.Guard.Sources[0].Owned != 10 {
		t.Errorf("incremental sync: pool %+v, guard %+v; want 10 used before and after, 10 owned", rep.Pools[0], rep.Guard.Sources[0])
	}
	if c := h.cursor(); c.Position != "v1" {
		t.Errorf("after the incremental sync the cursor is %+v, want v1", c)
	}

	// A read cut short writes nothing and keeps the cursor.
	h.l.set([]model.Identity{staffer("E3", "user3", "Chief")})
	h.l.fail = errors.New("connection reset")
	h.run("failed read", reconcile.Options{}, reconcile.ErrPull)
	if c := h.cursor(); c.Position != "v1" {
		t.Errorf("a failed read moved the cursor to %+v", c)
	}
	if p, _ := st.Profile(ctx, "user3"); p.Title != "Staff" {
		t.Errorf("a failed read changed user3: %+v", p)
	}

	// A run the guard refuses keeps the cursor; the next run, allowed,
	// reads the same changes again.
	h.l.set(nil, "E4", "E5", "E6")
	h.run("guarded", reconcile.Options{}, reconcile.ErrGuardTripped)
	h.lastAsked("guarded", "v1")
	if c := h.cursor(); c.Position != "v1" {
		t.Errorf("a guard refusal moved the cursor to %+v", c)
	}
	rep = h.run("allowed", reconcile.Options{AllowDeprovision: true}, nil)
	h.lastAsked("allowed", "v1")
	if got := summarize(rep); got != "block user4 left_source; block user5 left_source; block user6 left_source; update user3" {
		t.Errorf("allowed sync changed: %s", got)
	}
	if c := h.cursor(); c.Position != "v3" {
		t.Errorf("after the allowed sync the cursor is %+v, want v3", c)
	}

	// Nothing changed: nothing read, nothing planned, the cursor not
	// written again.
	_, keptAt, _ := st.Value(ctx, reconcile.CursorKey("dir"))
	rep = h.run("no-op", reconcile.Options{}, nil)
	if _, at, _ := st.Value(ctx, reconcile.CursorKey("dir")); !at.Equal(keptAt) {
		t.Errorf("a no-op run wrote the cursor again (%s, before %s)", at, keptAt)
	}
	h.source("no-op", rep, false, 0, 0, "")
	if len(rep.Changes) != 0 || rep.Result != reconcile.ResultOK {
		t.Errorf("no-op sync: result %s, changes %s", rep.Result, summarize(rep))
	}

	// A refused cursor: a full read, reported, whoever it misses has left.
	h.guarded.forbid = false
	h.l.refuse = true
	rep = h.run("refused", reconcile.Options{}, nil)
	h.source("refused", rep, true, 7, 0, "the server refused the cursor v3")
	if len(rep.Changes) != 0 {
		t.Errorf("a full read after a refused cursor changed: %s", summarize(rep))
	}

	// --full reads in full; so does a source configured otherwise since.
	rep = h.run("--full", reconcile.Options{Full: true}, nil)
	h.source("--full", rep, true, 7, 0, "")
	h.r.Config = incConfig("other")
	rep = h.run("reconfigured", reconcile.Options{AllowDeprovision: true}, nil)
	h.source("reconfigured", rep, true, 7, 0, "configuration changed")
	if rep.Summary.Move != 7 {
		t.Errorf("the new area reached %d of 7 people", rep.Summary.Move)
	}

	// A cursor the store holds unreadable: a full read, reported.
	if err := st.SetValue(ctx, reconcile.CursorKey("dir"), "garbage"); err != nil {
		t.Fatal(err)
	}
	rep = h.run("garbage", reconcile.Options{}, nil)
	h.source("garbage", rep, true, 7, 0, "unreadable")

	// The full schedule (daily at 02:00 by default) makes the first run
	// after 02:00 a full one, and the next incremental again.
	rep = h.run("before 02:00", reconcile.Options{}, nil)
	h.source("before 02:00", rep, false, 0, 0, "")
	h.clock = time.Date(2026, 6, 2, 2, 0, 0, 0, time.UTC)
	rep = h.run("after 02:00", reconcile.Options{}, nil)
	h.source("after 02:00", rep, true, 7, 0, "")
	rep = h.run("after the full read", reconcile.Options{}, nil)
	h.source("after the full read", rep, false, 0, 0, "")
}

// TestIncrementalRunsCatchUp: what a full run would do at once and a
// read of changes would not see is caught up with by the next run, not
// left for the daily full read.
func TestIncrementalRunsCatchUp(t *testing.T) {
	h := newIncHarness(t)
	h.run("first sync", reconcile.Options{}, nil)

	// Delete notices while an unreadable entry suspends the leavers: the
	// cursor stays, and once the entry reads, the next run acts on them.
	h.l.set(nil, "E9")
	h.l.skips = []connector.Skip{{Where: "cn=broken", Reason: "no entryUUID"}}
	rep := h.run("suspended", reconcile.Options{}, nil)
	if len(rep.Changes) != 0 || rep.Sources[0].LeavesSuspended == "" {
		t.Fatalf("suspended: changes %s, source %+v; want none, leaves suspended", summarize(rep), rep.Sources[0])
	}
	if c := h.cursor(); c.Position != "v0" {
		t.Errorf("suspended delete notices moved the cursor to %s", c.Position)
	}
	h.l.skips = nil
	rep = h.run("readable again", reconcile.Options{}, nil)
	h.lastAsked("readable again", "v0")
	if got := summarize(rep); got != "block user9 left_source" {
		t.Errorf("readable again: changes %s, want user9 blocked", got)
	}
	if c := h.cursor(); c.Position != "v1" {
		t.Errorf("after the suspension the cursor is %s, want v1", c.Position)
	}

	// A newcomer skipped for a username someone holds gets it as soon as
	// the holder is renamed: the rename asks for a full read next.
	h.l.set([]model.Identity{staffer("E20", "user1", "New")})
	rep = h.run("taken", reconcile.Options{}, nil)
	if len(rep.Skipped) != 1 || len(rep.Changes) != 0 {
		t.Fatalf("taken: skipped %+v, changes %s; want E20 skipped", rep.Skipped, summarize(rep))
	}
	h.run("nothing new", reconcile.Options{}, nil)
	h.l.set([]model.Identity{staffer("E1", "boss", "Staff")})
	rep = h.run("rename", reconcile.Options{}, nil)
	h.source("rename", rep, false, 1, 0, "")
	rep = h.run("after the rename", reconcile.Options{}, nil)
	h.source("after the rename", rep, true, 10, 0, "freed the username user1")
	if got := summarize(rep); got != "create user1" {
		t.Errorf("after the rename: changes %s, want user1 created", got)
	}
	rep = h.run("then", reconcile.Options{}, nil)
	h.source("then", rep, false, 0, 0, "")

	// A profile an admin deletes while its person is still in the source
	// comes back at the next run.
	adm := &admin.Admin{Store: h.st, Actor: "cli:test"}
	if _, err := adm.Delete(h.ctx, "user3"); err != nil {
		t.Fatal(err)
	}
	rep = h.run("after the admin's delete", reconcile.Options{}, nil)
	h.source("after the admin's delete", rep, true, 10, 0, "deleted by cli:test")
	if got := summarize(rep); got != "create user3" {
		t.Errorf("after the admin's delete: changes %s, want user3 created", got)
	}
	rep = h.run("and then", reconcile.Options{}, nil)
	h.source("and then", rep, false, 0, 0, "")

	// A read that finds its cursor unusable part way fails the run, and
	// the next reads in full.
	h.l.fail = fmt.Errorf("%w: its known set is cut short", connector.ErrCursor)
	h.run("cursor broken", reconcile.Options{}, reconcile.ErrPull)
	rep = h.run("after the broken cursor", reconcile.Options{}, nil)
	h.source("after the broken cursor", rep, true, 10, 0, "could not use the cursor")
	rep = h.run("incremental again", reconcile.Options{}, nil)
	h.source("incremental again", rep, false, 0, 0, "")
}

// summarize lists a report's changes as "action username reason".
func summarize(rep *reconcile.Report) string {
	var out []string
	for _, ch := range rep.Changes {
		s := string(ch.Action) + " " + ch.Username
		if ch.Reason != "" {
			s += " " + ch.Reason
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}
