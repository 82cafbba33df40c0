package target_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
	"github.com/seatsync/seatsync/target"
)

// app is an application in memory behind the Client interface: the
// Pusher's own logic is under test here, against a real store; the SCIM
// client is tested against a real SCIM server in package scim.
type app struct {
	mu        sync.Mutex
	users     map[string]*target.User // by id
	next      int
	active    int
	maxActive int
	calls     map[string]int
	// fail, when set, is asked before each call; a non-nil error is
	// returned instead of doing it.
	fail func(op, username string) error
	// lose drops the answer of a create after doing it, once per user.
	lose map[string]bool
	// exactFind makes Find compare userNames case-sensitively, as SCIMMY's
	// "userName eq" does.
	exactFind bool
}

func newApp() *app { return &app{users: map[string]*target.User{}, calls: map[string]int{}} }

func (a *app) call(op, username string) error {
	a.calls[op]++
	if a.fail != nil {
		return a.fail(op, username)
	}
	return nil
}

func (a *app) setActive(u *target.User, active bool) {
	if u.Active != active {
		if active {
			a.active++
		} else {
			a.active--
		}
		u.Active = active
	}
	a.maxActive = max(a.maxActive, a.active)
}

func (a *app) Render(p *model.Profile, active bool) map[string]string {
	return map[string]string{"userName": p.Username, "title": p.Title, "active": fmt.Sprint(active)}
}

func (a *app) Find(_ context.Context, names []string) (map[string]target.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("find", strings.Join(names, ",")); err != nil {
		return nil, err
	}
	out := map[string]target.User{}
	for _, u := range a.users {
		for _, n := range names {
			if strings.EqualFold(u.UserName, n) && (!a.exactFind || u.UserName == n) {
				out[model.FoldUsername(n)] = *u
			}
		}
	}
	return out, nil
}

func (a *app) Create(_ context.Context, p *model.Profile, active bool) (target.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("create", p.Username); err != nil {
		return target.User{}, err
	}
	for _, u := range a.users {
		if strings.EqualFold(u.UserName, p.Username) {
			return target.User{}, &target.Error{Status: 409, Err: target.ErrUniqueness, Message: "userName taken"}
		}
	}
	a.next++
	u := &target.User{ID: fmt.Sprintf("u%d", a.next), UserName: p.Username, ExternalID: p.ExternalID}
	a.users[u.ID] = u
	a.setActive(u, active)
	if a.lose[p.Username] {
		delete(a.lose, p.Username)
		return target.User{}, &target.Error{Message: "connection reset before the answer"}
	}
	return *u, nil
}

func (a *app) Update(_ context.Context, u target.User, p *model.Profile, active bool) (target.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("update", p.Username); err != nil {
		return target.User{}, err
	}
	cur, ok := a.users[u.ID]
	if !ok {
		return target.User{}, &target.Error{Status: 404, Err: target.ErrNotFound, Message: "no such user"}
	}
	cur.UserName = p.Username
	a.setActive(cur, active)
	return *cur, nil
}

func (a *app) Deactivate(_ context.Context, u target.User) (target.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("deactivate", u.UserName); err != nil {
		return target.User{}, err
	}
	cur, ok := a.users[u.ID]
	if !ok {
		return target.User{}, &target.Error{Status: 404, Err: target.ErrNotFound, Message: "no such user"}
	}
	a.setActive(cur, false)
	return *cur, nil
}

func (a *app) Delete(_ context.Context, u target.User) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.call("delete", u.UserName); err != nil {
		return err
	}
	if cur, ok := a.users[u.ID]; ok {
		a.setActive(cur, false)
		delete(a.users, u.ID)
	}
	return nil
}

func (a *app) List(_ context.Context, each func(target.User) error) error {
	a.mu.Lock()
	us := make([]target.User, 0, len(a.users))
	for _, u := range a.users {
		us = append(us, *u)
	}
	a.mu.Unlock()
	for _, u := range us {
		if err := each(u); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) byName() map[string]target.User {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]target.User{}
	for _, u := range a.users {
		out[u.UserName] = *u
	}
	return out
}

// world is a store, profiles in it, and a target pushed to.
type world struct {
	t   *testing.T
	st  *sqlite.Store
	cfg target.Config
	app *app
}

func newWorld(t *testing.T) *world {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &world{t: t, st: st, app: newApp(),
		cfg: target.Config{Name: "app", Type: "test", OnDelete: target.OnDeleteDeactivate, Adopt: true, Workers: 4}}
}

// write applies fn to profiles by username in one transaction, marking
// them pending as the apply does.
func (w *world) write(fn func(tx store.Tx) error) {
	w.t.Helper()
	if err := w.st.WithTx(w.t.Context(), fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) create(ps ...*model.Profile) {
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
	w.write(func(tx store.Tx) error {
		before := *p
		change(p)
		if err := tx.Update(w.t.Context(), p); err != nil {
			return err
		}
		return target.MarkPending(w.t.Context(), tx, []target.Config{w.cfg}, &before, p)
	})
}

func (w *world) push(retryFailed bool) (target.Result, error) {
	w.t.Helper()
	return (&target.Pusher{Store: w.st, Log: zap.NewNop()}).Push(w.t.Context(), w.cfg, w.app, retryFailed)
}

func person(name string, active bool, at time.Time) *model.Profile {
	p := &model.Profile{Username: name, Area: "primary", State: model.Active, Source: "hr", ExternalID: "E-" + name, ActivatedAt: at}
	if !active {
		p.State, p.BlockReason, p.ActivatedAt = model.Blocked, model.ReasonLicense, time.Time{}
	}
	return p
}

func TestPushConverges(t *testing.T) {
	w := newWorld(t)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ps []*model.Profile
	for i := range 30 {
		ps = append(ps, person(fmt.Sprintf("p%02d", i), i < 20, t0))
	}
	w.create(ps...)
	res, err := w.push(false)
	if err != nil || res.Sent != 30 || res.Pending != 0 || res.Failed != 0 {
		t.Fatalf("first push: %+v, %v; want 30 sent, nothing left", res, err)
	}
	if n := w.app.calls["find"]; n != 1 {
		t.Errorf("%d lookups before 30 creates, want one for all", n)
	}
	users := w.app.byName()
	if len(users) != 30 || w.app.active != 20 {
		t.Fatalf("the application holds %d users, %d active; want 30 and 20", len(users), w.app.active)
	}
	// Nothing pending: a second push sends nothing.
	before := fmt.Sprint(w.app.calls)
	if res, err := w.push(false); err != nil || res.Sent != 0 || fmt.Sprint(w.app.calls) != before {
		t.Fatalf("a push with nothing pending: %+v, %v, calls %v -> %v", res, err, before, w.app.calls)
	}

	// A seat moves: p00 blocked, p20 activated. The deactivation goes
	// first, so the application never holds 21 active users.
	w.app.maxActive = w.app.active
	w.update(ps[20], func(p *model.Profile) { p.State, p.BlockReason, p.ActivatedAt = model.Active, "", t0.Add(time.Hour) })
	w.update(ps[0], func(p *model.Profile) { p.State, p.BlockReason = model.Blocked, model.ReasonAdmin })
	if res, err := w.push(false); err != nil || res.Sent != 2 {
		t.Fatalf("push of one seat moving: %+v, %v", res, err)
	}
	if w.app.maxActive != 20 {
		t.Errorf("the application held %d active users at once, over the 20 seats", w.app.maxActive)
	}
	// A change that renders the same (a field the target does not send)
	// needs no request.
	calls := fmt.Sprint(w.app.calls)
	w.update(ps[5], func(p *model.Profile) { p.Department = "Sales" })
	if res, err := w.push(false); err != nil || res.Sent != 0 || fmt.Sprint(w.app.calls) != calls {
		t.Errorf("a change the target does not see: %+v, %v; calls %v -> %v", res, err, calls, w.app.calls)
	}
}

func TestPushHoldsBackActivationsWhenADeactivationFails(t *testing.T) {
	w := newWorld(t)
	t0 := time.Now()
	a, b := person("alice", true, t0), person("bob", false, t0)
	w.create(a, b)
	if _, err := w.push(false); err != nil {
		t.Fatal(err)
	}
	w.update(a, func(p *model.Profile) { p.State, p.BlockReason = model.Blocked, model.ReasonAdmin })
	w.update(b, func(p *model.Profile) { p.State, p.BlockReason, p.ActivatedAt = model.Active, "", t0 })
	w.app.fail = func(op, user string) error {
		if user == "alice" {
			return &target.Error{Status: 503, Message: "unavailable"}
		}
		return nil
	}
	res, err := w.push(false)
	if err != nil || res.HeldBack != 1 || res.Pending != 2 || res.Sent != 0 {
		t.Fatalf("push with alice's deactivation failing: %+v, %v; want bob held back, both pending", res, err)
	}
	if u := w.app.byName(); u["alice"].Active != true || u["bob"].Active {
		t.Fatalf("application state: %+v", u)
	}
	w.app.fail = nil
	if res, err := w.push(false); err != nil || res.Sent != 2 || res.Pending != 0 {
		t.Fatalf("the next push: %+v, %v", res, err)
	}
	if u := w.app.byName(); u["alice"].Active || !u["bob"].Active {
		t.Fatalf("application state after the retry: %+v", u)
	}
}

func TestPushNeverCreatesTwice(t *testing.T) {
	w := newWorld(t)
	// carol was created, but the answer was lost; dave is in the
	// application already, in other case, and is adopted.
	w.app.lose = map[string]bool{"carol": true}
	w.app.users["pre"] = &target.User{ID: "pre", UserName: "DAVE"}
	c, d := person("carol", true, time.Now()), person("dave", true, time.Now())
	w.create(c, d)
	res, err := w.push(false)
	if err != nil || res.Pending != 1 {
		t.Fatalf("push with carol's answer lost: %+v, %v; want carol pending", res, err)
	}
	if res, err := w.push(false); err != nil || res.Pending != 0 {
		t.Fatalf("the next push: %+v, %v", res, err)
	}
	users := w.app.byName()
	if len(users) != 2 || users["dave"].ID != "pre" {
		t.Fatalf("the application holds %+v; want carol once and dave linked to his own user", users)
	}
	links, err := w.st.Links(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if links[c.ID].AppID != users["carol"].ID || links[d.ID].AppID != "pre" {
		t.Errorf("links: %+v", links)
	}

	// Without adopt, a user seatsync did not create is left alone and
	// reported.
	w.cfg.Adopt = false
	w.app.users["pre2"] = &target.User{ID: "pre2", UserName: "erin"}
	w.create(person("erin", true, time.Now()))
	res, err = w.push(false)
	if err != nil || res.Failed != 1 || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error, "adopt: true") {
		t.Fatalf("erin without adopt: %+v, %v", res, err)
	}
}

// TestPushAdoptsWhenLookupsAreCaseSensitive: the application's lookup
// misses DAVE for dave, its create answers 409; the user is found all the
// same, and linked.
func TestPushAdoptsWhenLookupsAreCaseSensitive(t *testing.T) {
	w := newWorld(t)
	w.app.exactFind = true
	w.app.users["pre"] = &target.User{ID: "pre", UserName: "DAVE"}
	w.create(person("dave", true, time.Now()))
	if res, err := w.push(false); err != nil || res.Sent != 1 || res.Failed != 0 {
		t.Fatalf("push of dave: %+v, %v; want him linked to DAVE", res, err)
	}
	if users := w.app.byName(); len(users) != 1 || users["dave"].ID != "pre" {
		t.Fatalf("the application holds %+v; want dave linked to his own user", users)
	}
}

// TestPushLookupFailure: a lookup that fails for a passing reason holds
// back the users it was for, with why, and the other pushes go on.
func TestPushLookupFailure(t *testing.T) {
	w := newWorld(t)
	a := person("alice", true, time.Now())
	w.create(a)
	if _, err := w.push(false); err != nil {
		t.Fatal(err)
	}
	w.update(a, func(p *model.Profile) { p.State, p.BlockReason = model.Blocked, model.ReasonAdmin })
	w.create(person("bob", true, time.Now()))
	w.app.fail = func(op, _ string) error {
		if op == "find" {
			return &target.Error{Status: 503, Message: "GET /Users: unavailable"}
		}
		return nil
	}
	res, err := w.push(false)
	if err != nil || res.Sent != 1 || res.Pending != 1 || res.Error != "" {
		t.Fatalf("push with the lookup failing: %+v, %v; want alice's deactivation sent, bob pending", res, err)
	}
	if u := w.app.byName(); u["alice"].Active || len(u) != 1 {
		t.Fatalf("application state: %+v", u)
	}
	pending, err := w.st.Pending(t.Context(), "app")
	if err != nil || len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastStatus != 503 || !strings.Contains(pending[0].LastError, "unavailable") {
		t.Fatalf("pending: %+v, %v; want bob's push, with the lookup's error", pending, err)
	}
	w.app.fail = nil
	if res, err := w.push(false); err != nil || res.Sent != 1 || res.Pending != 0 {
		t.Fatalf("the next push: %+v, %v", res, err)
	}
}

func TestPushFailures(t *testing.T) {
	w := newWorld(t)
	ps := []*model.Profile{person("ann", true, time.Now()), person("ben", true, time.Now()), person("cat", true, time.Now())}
	w.create(ps...)
	w.app.fail = func(op, user string) error {
		if op == "create" && user == "ben" {
			return &target.Error{Status: 400, Message: "invalidValue: ben is not allowed"}
		}
		return nil
	}
	res, err := w.push(false)
	if err != nil || res.Sent != 2 || res.Failed != 1 || len(res.Failures) != 1 || res.Failures[0].Username != "ben" ||
		res.Failures[0].Status != 400 || !strings.Contains(res.Failures[0].Error, "ben is not allowed") {
		t.Fatalf("a 400 for ben: %+v, %v", res, err)
	}
	// A refused push waits for a change, or for targets push.
	if res, err := w.push(false); err != nil || res.Sent != 0 || res.Failed != 1 {
		t.Fatalf("the next push: %+v, %v; want ben still failed, not sent", res, err)
	}
	w.app.fail = nil
	if res, err := w.push(true); err != nil || res.Sent != 1 || res.Failed != 0 {
		t.Fatalf("push with retryFailed: %+v, %v", res, err)
	}

	// Bad credentials stop the whole target; everything stays pending.
	w.update(ps[0], func(p *model.Profile) { p.Title = "Boss" })
	w.update(ps[2], func(p *model.Profile) { p.Title = "Cat" })
	w.app.fail = func(string, string) error {
		return &target.Error{Status: 401, Err: target.ErrUnauthorized, Message: "bad token"}
	}
	res, err = w.push(false)
	if !errors.Is(err, target.ErrUnauthorized) || res.Pending != 2 || res.Error == "" {
		t.Fatalf("a 401: %+v, %v; want ErrUnauthorized and both pending", res, err)
	}
}

func TestPushDeletes(t *testing.T) {
	for _, onDelete := range []string{target.OnDeleteDeactivate, target.OnDeleteDelete} {
		t.Run(onDelete, func(t *testing.T) {
			w := newWorld(t)
			w.cfg.OnDelete = onDelete
			p := person("gus", true, time.Now())
			w.create(p)
			if _, err := w.push(false); err != nil {
				t.Fatal(err)
			}
			w.write(func(tx store.Tx) error {
				if err := tx.Delete(t.Context(), *p); err != nil {
					return err
				}
				return target.MarkPending(t.Context(), tx, []target.Config{w.cfg}, p, nil)
			})
			if res, err := w.push(false); err != nil || res.Sent != 1 || res.Pending != 0 {
				t.Fatalf("push of a delete: %+v, %v", res, err)
			}
			u, ok := w.app.byName()["gus"]
			switch onDelete {
			case target.OnDeleteDelete:
				if ok {
					t.Errorf("gus is still in the application: %+v", u)
				}
			default:
				if !ok || u.Active {
					t.Errorf("gus should be deactivated, is %+v (present %v)", u, ok)
				}
			}
		})
	}
}
