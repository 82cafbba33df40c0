package admin_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
	"github.com/seatsync/seatsync/target"
)

func newStore(t *testing.T, usernames ...string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = st.WithTx(ctx, func(tx store.Tx) error {
		for _, u := range usernames {
			p := model.Profile{Username: u, Area: "primary", State: model.Active, CreatedAt: now, UpdatedAt: now}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func policy() *licensing.Policy {
	return licensing.FromConfig(config.Licensing{Pools: []config.Pool{{Name: "primary", Limit: config.Limit{N: 5}, Areas: []string{"primary"}}}})
}

// TestActorInAuditLog: every action's audit entry names who acted.
func TestActorInAuditLog(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "alice", "bob")
	ad := &admin.Admin{Store: st, Policy: policy(), Actor: "cli:carol"}
	if _, err := ad.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.Unblock(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	ad.Actor = "api:192.0.2.7"
	if _, err := ad.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	entries, err := st.Audit(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Actor, Action, Username string }
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Actor, e.Action, e.Username})
	}
	want := []row{ // newest first
		{"api:192.0.2.7", "delete", "bob"},
		{"cli:carol", "unblock", "alice"},
		{"cli:carol", "block", "alice"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

// TestNoActor: an Admin that does not say who acts changes nothing.
func TestNoActor(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "alice")
	ad := &admin.Admin{Store: st, Policy: policy()}
	for name, act := range map[string]func() error{
		"block":   func() error { _, err := ad.Block(ctx, "alice"); return err },
		"unblock": func() error { _, err := ad.Unblock(ctx, "alice", false); return err },
		"delete":  func() error { _, err := ad.Delete(ctx, "alice"); return err },
	} {
		if err := act(); !errors.Is(err, admin.ErrNoActor) {
			t.Errorf("%s without an actor: %v, want ErrNoActor", name, err)
		}
	}
	if p, err := st.Profile(ctx, "alice"); err != nil || p.State != model.Active {
		t.Errorf("alice after actions without an actor: %+v, %v", p, err)
	}
	if entries, _ := st.Audit(ctx, "", 0); len(entries) != 0 {
		t.Errorf("audit entries without an actor: %+v", entries)
	}
}

// TestActionsMarkPushes: an admin's block, unblock and delete reach the
// targets that cover the profile's area, through the store's outbox.
func TestActionsMarkPushes(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "alice", "bob")
	targets := []target.Config{{Name: "intranet", Areas: []string{"primary"}}, {Name: "extranet", Areas: []string{"partners"}}}
	ad := &admin.Admin{Store: st, Policy: policy(), Actor: "cli:carol", Targets: targets}
	pending := func(name string) []string {
		t.Helper()
		ps, err := st.Pending(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			switch {
			case p.Profile != nil:
				out = append(out, p.Profile.Username+" "+string(p.Profile.State))
			case p.Gone != nil:
				out = append(out, p.Gone.Username+" deleted")
			}
		}
		return out
	}
	if _, err := ad.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alice blocked", "bob deleted"}, pending("intranet")); diff != "" {
		t.Errorf("pending for intranet (-want +got):\n%s", diff)
	}
	if got := pending("extranet"); len(got) != 0 {
		t.Errorf("pending for a target of other areas: %v", got)
	}
	// Nothing to do marks nothing.
	if _, err := ad.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := pending("intranet"); len(got) != 2 {
		t.Errorf("a block with nothing to do changed the outbox: %v", got)
	}
}

// TestJSONKeysInFieldOrder: json keys follow --fields, and a field named
// twice is one key.
func TestJSONKeysInFieldOrder(t *testing.T) {
	var buf bytes.Buffer
	profiles := []model.Profile{{Username: "alice", Email: "alice@example.com", Groups: []string{"b", "a"}}}
	err := admin.WriteProfiles(&buf, profiles, licensing.FromConfig(config.Licensing{}), admin.ListOptions{Format: "json", Fields: []string{"groups", "email", "username", "email"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "[\n  {\n    \"groups\": [\n      \"b\",\n      \"a\"\n    ],\n    \"email\": \"alice@example.com\",\n    \"username\": \"alice\"\n  }\n]\n"
	if buf.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestPage: pages follow folded usernames whatever order they come in,
// and a cursor past a username that is gone still starts at the next one.
func TestPage(t *testing.T) {
	var profiles []model.Profile
	for _, u := range []string{"dave", "Bob", "alice", "Carol"} {
		profiles = append(profiles, model.Profile{Username: u})
	}
	names := func(ps []model.Profile) (out []string) {
		for _, p := range ps {
			out = append(out, p.Username)
		}
		return out
	}
	page, next := admin.Page(profiles, "", 2)
	if diff := cmp.Diff([]string{"alice", "Bob"}, names(page)); diff != "" || next != "bob" {
		t.Errorf("page 1 (-want +got):\n%s next %q", diff, next)
	}
	page, next = admin.Page(profiles, next, 2)
	if diff := cmp.Diff([]string{"Carol", "dave"}, names(page)); diff != "" || next != "" {
		t.Errorf("page 2 (-want +got):\n%s next %q", diff, next)
	}
	page, next = admin.Page(profiles, "bobby", 5)
	if diff := cmp.Diff([]string{"Carol", "dave"}, names(page)); diff != "" || next != "" {
		t.Errorf("after a gone username (-want +got):\n%s next %q", diff, next)
	}
	if page, next := admin.Page(profiles, "zed", 5); len(page) != 0 || next != "" {
		t.Errorf("past the end: %v %q", names(page), next)
	}
}

// A pool frozen by an expired licence gives no seat to an admin's
// unblock either, and says why.
func TestUnblockFrozenPool(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "bob")
	open := &admin.Admin{Store: st, Policy: policy(), Actor: "cli:test"}
	if _, err := open.Block(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	pol := licensing.NewPolicy([]licensing.Pool{{Name: "primary", Limit: 5, Areas: []string{"primary"}, LimitFrom: "MAX_USERS", Frozen: true}}, nil, nil, "keep")
	ad := &admin.Admin{Store: st, Policy: pol, Actor: "cli:test"}
	_, err := ad.Unblock(ctx, "bob", false)
	if !errors.Is(err, admin.ErrNoSeat) || !strings.Contains(err.Error(), "it takes its limit from the licence (MAX_USERS), which has expired or is not valid") {
		t.Errorf("unblock in a frozen pool: %v", err)
	}
	if out, err := ad.Unblock(ctx, "bob", true); err != nil || out.Action != "queue" {
		t.Errorf("unblock --queue in a frozen pool: %+v, %v", out, err)
	}
}
