package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/internal/scimtest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
	"github.com/seatsync/seatsync/target"
)

// world is a store with profiles, and the Pusher sending them to a real
// SCIM server through the real client (as target/push_test.go does with
// an application in memory).
type world struct {
	t      *testing.T
	st     *sqlite.Store
	cfg    target.Config
	s      *scimtest.Server
	client target.Client
}

func newWorld(t *testing.T, opts scimtest.Options) *world {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := scimtest.Start(t, opts)
	c := open(t, s, s.URL(), "    timeout: 5s\n")
	return &world{t: t, st: st, s: s, client: c,
		cfg: target.Config{Name: "app", Type: "scim", OnDelete: target.OnDeleteDeactivate, Adopt: true, Workers: target.Workers}}
}

func (w *world) write(fn func(tx store.Tx) error) {
	w.t.Helper()
	if err := w.st.WithTx(w.t.Context(), fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) create(ps ...*model.Profile) {
	w.t.Helper()
	w.write(func(tx store.Tx) error {
		for _, p := range ps {
			if err := tx.Insert(w.t.Context(), p); err != nil {
				return err
			}
			if err := target.MarkPending(w.t.Context(), tx, []target.Config{w.cfg}, nil, p); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w *world) update(p *model.Profile, change func(*model.Profile)) {
	w.t.Helper()
	w.write(func(tx store.Tx) error {
		before := *p
		change(p)
		if err := tx.Update(w.t.Context(), p); err != nil {
			return err
		}
		return target.MarkPending(w.t.Context(), tx, []target.Config{w.cfg}, &before, p)
	})
}

func (w *world) push(c target.Client) (target.Result, error) {
	w.t.Helper()
	if c == nil {
		c = w.client
	}
	return (&target.Pusher{Store: w.st, Log: zaptest.NewLogger(w.t)}).Push(w.t.Context(), w.cfg, c, false)
}

// converged checks that the server holds each profile once, active as
// its state says, linked to it, and that verify finds no drift.
func (w *world) converged(ps []*model.Profile) {
	w.t.Helper()
	users := w.s.Users()
	byName := map[string]scimtest.User{}
	for _, u := range users {
		k := model.FoldUsername(u.UserName)
		if _, dup := byName[k]; dup {
			w.t.Errorf("two users with userName %q", u.UserName)
		}
		byName[k] = u
	}
	if len(users) != len(ps) {
		w.t.Errorf("the server holds %d users, want %d", len(users), len(ps))
	}
	links, err := w.st.Links(w.t.Context(), w.cfg.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range ps {
		u, ok := byName[model.FoldUsername(p.Username)]
		switch {
		case !ok:
			w.t.Errorf("%s is not on the server", p.Username)
		case u.IsActive() != (p.State == model.Active):
			w.t.Errorf("%s: active %v on the server, state %s", p.Username, u.IsActive(), p.State)
		case links[p.ID].AppID != u.ID:
			w.t.Errorf("%s: linked to %q, the server's user is %s", p.Username, links[p.ID].AppID, u.ID)
		}
	}
	d, err := (&target.Verifier{Store: w.st}).Verify(w.t.Context(), w.cfg, w.client)
	if err != nil || d.Count() != 0 || d.Unmanaged != 0 {
		w.t.Errorf("verify: %+v, %v; want no drift", d, err)
	}
}

// people are n profiles of which the first active are active, in seat
// order, and the others wait in the licence queue.
func people(n, active int) []*model.Profile {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ps []*model.Profile
	for i := range n {
		p := person(fmt.Sprintf("p%03d", i))
		p.ActivatedAt = t0.Add(time.Duration(i) * time.Minute)
		if i >= active {
			p.State, p.BlockReason, p.ActivatedAt, p.QueuedAt = model.Blocked, model.ReasonLicense, time.Time{}, t0.Add(time.Duration(i)*time.Minute)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestPushSeats: 60 profiles, 50 seats: 50 active users and 10 inactive;
// a seat that moves is freed before it is taken, so that the
// application never holds more than 50 active users.
func TestPushSeats(t *testing.T) {
	t.Parallel()
	w := newWorld(t, scimtest.Options{})
	ps := people(60, 50)
	w.create(ps...)
	res, err := w.push(nil)
	if err != nil || res.Sent != 60 || res.Pending != 0 || res.Failed != 0 {
		t.Fatalf("first push: %+v, %v", res, err)
	}
	if c := w.s.Counters(); c.Active != 50 || c.MaxActive != 50 || c.Requests[scimtest.KindCreate] != 60 {
		t.Errorf("after the first push: %d active, %d at most, %d creates; want 50, 50, 60", c.Active, c.MaxActive, c.Requests[scimtest.KindCreate])
	}
	w.converged(ps)

	// p000 is blocked, the first in the queue (p050) gets the seat; and
	// a latency makes the two requests overlap if the Pusher let them.
	w.s.ResetCounters()
	w.s.SetFaults(scimtest.Faults{Latency: 50 * time.Millisecond})
	w.update(ps[0], func(p *model.Profile) {
		p.State, p.BlockReason, p.BlockedAt = model.Blocked, model.ReasonAdmin, time.Now()
	})
	w.update(ps[50], func(p *model.Profile) {
		p.State, p.BlockReason, p.QueuedAt, p.ActivatedAt = model.Active, "", time.Time{}, time.Now()
	})
	if res, err := w.push(nil); err != nil || res.Sent != 2 || res.Pending != 0 {
		t.Fatalf("push of a seat moving: %+v, %v", res, err)
	}
	c := w.s.Counters()
	if c.MaxActive > 50 {
		t.Errorf("the application held %d active users at once; the log: %+v", c.MaxActive, c.ActiveLog)
	}
	if len(c.ActiveLog) != 2 || c.ActiveLog[0].UserName != "p000" || c.ActiveLog[0].Active != 49 ||
		c.ActiveLog[1].UserName != "p050" || c.ActiveLog[1].Active != 50 {
		t.Errorf("writes: %+v; want p000 deactivated (49), then p050 activated (50)", c.ActiveLog)
	}
	w.s.SetFaults(scimtest.Faults{})
	w.converged(ps)

	// Nothing pending: nothing sent.
	w.s.ResetCounters()
	if res, err := w.push(nil); err != nil || res.Sent != 0 || w.s.Counters().Total != 0 {
		t.Errorf("a push with nothing pending: %+v, %v, %d requests", res, err, w.s.Counters().Total)
	}
	// Deleted: deactivated, and verify still finds no drift.
	w.write(func(tx store.Tx) error {
		if err := tx.Delete(t.Context(), *ps[1]); err != nil {
			return err
		}
		return target.MarkPending(t.Context(), tx, []target.Config{w.cfg}, ps[1], nil)
	})
	if res, err := w.push(nil); err != nil || res.Sent != 1 {
		t.Fatalf("push of a delete: %+v, %v", res, err)
	}
	if u := w.s.UserByName("p001"); u == nil || u.IsActive() {
		t.Errorf("p001 after its profile's delete: %+v", u)
	}
	if d, err := (&target.Verifier{Store: w.st}).Verify(t.Context(), w.cfg, w.client); err != nil || d.Count() != 0 {
		t.Errorf("verify after a delete: %+v, %v", d, err)
	}
}

// killer is the real client, and kills the server after the n-th create
// it saw answered.
type killer struct {
	target.Client
	s       *scimtest.Server
	n       int32
	created atomic.Int32
}

func (k *killer) Create(ctx context.Context, p *model.Profile, active bool) (target.User, error) {
	u, err := k.Client.Create(ctx, p, active)
	if err == nil && k.created.Add(1) == k.n {
		k.s.Kill()
	}
	return u, err
}

// TestPushServerKilled: the server dies half-way through a push; what it
// did not answer stays pending, and the next push, once it is back,
// converges with no user twice.
func TestPushServerKilled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, scimtest.Options{})
	ps := people(60, 50)
	w.create(ps...)
	res, err := w.push(&killer{Client: w.client, s: w.s, n: 20})
	if err != nil || res.Sent < 20 || res.Sent >= 60 || res.Pending != 60-res.Sent || res.Failed != 0 {
		t.Fatalf("push with the server killed after 20 creates: %+v, %v; want the rest pending", res, err)
	}
	pending, err := w.st.Pending(t.Context(), w.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		if p.LastStatus != 0 || p.LastError == "" {
			t.Errorf("%s pending with status %d, error %q; want no answer", p.Profile.Username, p.LastStatus, p.LastError)
		}
	}
	w.s.Restart()
	res, err = w.push(nil)
	if err != nil || res.Pending != 0 || res.Failed != 0 {
		t.Fatalf("push after the restart: %+v, %v", res, err)
	}
	w.converged(ps)
	if c := w.s.Counters(); c.MaxActive > 50 {
		t.Errorf("%d active at once", c.MaxActive)
	}
}

// TestPushLostAnswer: the server creates the users and the answers are
// lost (500 after the create): the next push finds and links them, and
// never creates a second user. With ETags, the links keep the versions
// the listing gave, and a user changed behind seatsync's back is read
// again and updated.
func TestPushLostAnswer(t *testing.T) {
	t.Parallel()
	for _, etag := range []bool{false, true} {
		t.Run(fmt.Sprintf("etag=%v", etag), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, scimtest.Options{ETag: etag})
			ps := people(3, 3)
			w.create(ps...)
			w.s.SetFaults(scimtest.Faults{FailEvery: 1, FailMethods: []string{http.MethodPost}, FailAfterApply: true})
			res, err := w.push(nil)
			if err != nil || res.Sent != 0 || res.Pending != 3 {
				t.Fatalf("push with every create's answer lost: %+v, %v; want 3 pending", res, err)
			}
			if n := len(w.s.Users()); n != 3 {
				t.Fatalf("the server holds %d users; want the 3 it created", n)
			}
			w.s.SetFaults(scimtest.Faults{})
			w.s.ResetCounters()
			if res, err := w.push(nil); err != nil || res.Sent != 3 || res.Pending != 0 {
				t.Fatalf("the next push: %+v, %v", res, err)
			}
			c := w.s.Counters()
			if n := c.Requests[scimtest.KindCreate]; n != 0 || c.Statuses[412] != 0 {
				t.Errorf("the push after the lost answers: %d creates, %d answers 412; want none", n, c.Statuses[412])
			}
			w.converged(ps)

			// Changed in the application; then the profile changes.
			u := w.s.UserByName("p001")
			raw(t, w.s, http.MethodPatch, "/Users/"+u.ID, patch(map[string]any{"op": "replace", "path": "displayName", "value": "Changed"}))
			w.update(ps[1], func(p *model.Profile) { p.Title = "Lead" })
			w.s.ResetCounters()
			if res, err := w.push(nil); err != nil || res.Sent != 1 {
				t.Fatalf("push of p001: %+v, %v", res, err)
			}
			want := 0
			if etag {
				want = 1
			}
			if n := w.s.Counters().Statuses[412]; n != want {
				t.Errorf("%d answers 412; want %d", n, want)
			}
			w.converged(ps)
		})
	}
}

// TestPushAdoptsOtherCase: a user the application has already, with the
// profile's userName in other case (which SCIMMY's eq filter does not
// find), is adopted: linked and updated, not created again.
func TestPushAdoptsOtherCase(t *testing.T) {
	t.Parallel()
	w := newWorld(t, scimtest.Options{})
	st, pre := raw(t, w.s, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "JDoe", "active": false,
		"phoneNumbers": []any{map[string]any{"type": "work", "value": "+1 555 0199"}}})
	if st != http.StatusCreated {
		t.Fatalf("pre-existing user: %d %v", st, pre)
	}
	ps := []*model.Profile{person("jdoe"), person("other")}
	w.create(ps...)
	w.s.ResetCounters()
	res, err := w.push(nil)
	if err != nil || res.Sent != 2 || res.Pending != 0 {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if n := w.s.Counters().Requests[scimtest.KindCreate]; n != 1 {
		t.Errorf("%d creates; want one, for other", n)
	}
	u := w.s.UserByName("jdoe")
	if u == nil || u.ID != pre["id"] || u.UserName != "jdoe" || !u.IsActive() || u.Title != "Engineer" ||
		!strings.Contains(string(u.Raw), "+1 555 0199") {
		t.Errorf("jdoe on the server: %+v", u)
	}
	w.converged(ps)
}
