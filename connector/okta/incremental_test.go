package okta_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
)

// changes is what one PullChanges gave.
type changes struct {
	upserts []model.Identity
	deletes []string
	skips   []connector.Skip
	res     connector.Result
	logs    *observer.ObservedLogs
}

// pullChanges reads the changes since cursor, ten minutes later (the fake
// clock stands still otherwise): longer than the overlap, so a second
// read sees nothing of what the first one did.
func (o *org) pullChanges(t *testing.T, cfg testConfig, cursor string, opt ...func(*okta.Options)) (changes, error) {
	t.Helper()
	o.clock.Sleep(context.Background(), 10*time.Minute)
	opts := o.options()
	for _, f := range opt {
		f(&opts)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	src, err := okta.New(cfg.source(), zap.New(core), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	got := changes{logs: logs}
	got.res, err = src.(connector.Incremental).PullChanges(context.Background(), cursor, connector.ChangeSink{
		Upsert: func(id model.Identity) error { got.upserts = append(got.upserts, id); return nil },
		Delete: func(id string) error { got.deletes = append(got.deletes, id); return nil },
		Skip:   func(s connector.Skip) { got.skips = append(got.skips, s) },
	})
	return got, err
}

// first makes the first, full, incremental read and returns its cursor;
// the clock then moves on, so that what changes next is well after it.
func (o *org) first(t *testing.T, cfg testConfig) string {
	t.Helper()
	got, err := o.pullChanges(t, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if !got.res.Full || got.res.Fallback != "" || got.res.Cursor == "" {
		t.Fatalf("first read: %+v, want Full with a cursor", got.res)
	}
	full, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, got.upserts); diff != "" {
		t.Fatalf("first read is not a full pull (-pull +changes):\n%s", diff)
	}
	o.clock.Sleep(context.Background(), time.Hour)
	return got.res.Cursor
}

// sameAsFull checks that each upsert is what a full pull gives for that
// person, and that each deleted person is not in a full pull.
func (o *org) sameAsFull(t *testing.T, cfg testConfig, got changes) {
	t.Helper()
	ids, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	full := byID(ids)
	for _, u := range got.upserts {
		if diff := cmp.Diff(full[u.ExternalID], u); diff != "" {
			t.Errorf("upsert of %s is not what a full pull gives (-pull +changes):\n%s", u.ExternalID, diff)
		}
	}
	for _, d := range got.deletes {
		if _, ok := full[d]; ok {
			t.Errorf("%s was deleted, but a full pull has them", d)
		}
	}
}

func externalIDs(ids []model.Identity) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.ExternalID)
	}
	slices.Sort(out)
	return out
}

func TestIncrementalPagesOfChanges(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(500, nil)
	cfg := o.source()
	cursor := o.first(t, cfg)
	for _, id := range ids[:250] {
		o.UpdateUser(id, func(u *oktatest.User) { u.Profile["title"] = "Engineer" })
	}
	o.ResetCounts()
	got, err := o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got.res.Full || got.res.Fallback != "" || got.res.NoDeletes || got.res.Cursor <= cursor {
		t.Errorf("result %+v, want incremental with a later cursor than %q", got.res, cursor)
	}
	if diff := cmp.Diff(sorted(ids[:250]), externalIDs(got.upserts)); diff != "" {
		t.Errorf("upserted (-want +got):\n%s", diff)
	}
	if len(got.deletes) != 0 {
		t.Errorf("deletes %v", got.deletes)
	}
	// 250 changes are two pages, plus one of deactivated users.
	if n := o.Count(oktatest.EndpointUsers); n != 3 {
		t.Errorf("user list requests = %d, want 3", n)
	}
	o.sameAsFull(t, cfg, got)

	// Nothing changed since: nothing read.
	again, err := o.pullChanges(t, cfg, got.res.Cursor)
	if err != nil || len(again.upserts)+len(again.deletes) != 0 || again.res.Full {
		t.Errorf("a read with nothing changed: %d upserts, %d deletes, %+v, %v", len(again.upserts), len(again.deletes), again.res, err)
	}
}

func TestIncrementalDeprovisioned(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(*testConfig)
		delete bool // else: upserted, disabled
	}{
		{"no filter: out of the user list", func(*testConfig) {}, true},
		{"filter without status", func(c *testConfig) { c.Filter = `profile.lastName sw "Family"` }, true},
		{"filter naming DEPROVISIONED", func(c *testConfig) { c.Filter = `status eq "ACTIVE" or status eq "DEPROVISIONED"` }, false},
		{"search naming status", func(c *testConfig) { c.Search = `status eq "ACTIVE" or status eq "DEPROVISIONED"` }, false},
		{"groups: members stay members", func(c *testConfig) { c.Groups = []string{"Staff"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrg(t, 0)
			ids := o.people(3, func(_ int, u *oktatest.User) { u.Groups = []string{"Staff"} })
			cfg := o.source()
			tc.config(&cfg)
			cursor := o.first(t, cfg)
			o.UpdateUser(ids[1], func(u *oktatest.User) { u.Status = "DEPROVISIONED" })
			got, err := o.pullChanges(t, cfg, cursor)
			if err != nil {
				t.Fatal(err)
			}
			if tc.delete {
				if len(got.upserts) != 0 || !slices.Equal(got.deletes, []string{ids[1]}) {
					t.Errorf("upserts %v, deletes %v; want %s deleted", externalIDs(got.upserts), got.deletes, ids[1])
				}
			} else if len(got.deletes) != 0 || len(got.upserts) != 1 || got.upserts[0].ExternalID != ids[1] || got.upserts[0].Enabled {
				t.Errorf("upserts %+v, deletes %v; want %s upserted, disabled", got.upserts, got.deletes, ids[1])
			}
			o.sameAsFull(t, cfg, got)
		})
	}
}

func TestIncrementalSystemLogDelete(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(3, nil)
	cfg := o.source()
	cursor := o.first(t, cfg)
	o.DeleteUser(ids[0])
	o.UpdateUser(ids[2], func(u *oktatest.User) { u.Profile["title"] = "Boss" })
	got, err := o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got.res.NoDeletes || got.res.Full {
		t.Errorf("result %+v", got.res)
	}
	if !slices.Equal(got.deletes, []string{ids[0]}) || !slices.Equal(externalIDs(got.upserts), []string{ids[2]}) {
		t.Errorf("deletes %v, upserts %v; want %s deleted (once), %s upserted", got.deletes, externalIDs(got.upserts), ids[0], ids[2])
	}
	if o.Count(oktatest.EndpointLogs) != 1 {
		t.Errorf("System Log requests = %d, want 1 (a bounded request)", o.Count(oktatest.EndpointLogs))
	}
	o.sameAsFull(t, cfg, got)
}

// A change Okta stamped a little before the cursor (its clocks, its
// indexes catching up) still arrives.
func TestIncrementalOverlap(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(2, nil)
	cfg := o.source()
	cursor := o.first(t, cfg)
	at, err := time.Parse(time.RFC3339, strings.TrimPrefix(cursor, "okta1 "))
	if err != nil {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	o.UpdateUser(ids[1], func(u *oktatest.User) {
		u.Profile["title"] = "Late"
		u.LastUpdated = at.Add(-2 * time.Minute)
	})
	o.UpdateUser(ids[0], func(u *oktatest.User) {
		u.Profile["title"] = "Too late"
		u.LastUpdated = at.Add(-7 * time.Minute) // before the overlap
	})
	got, err := o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(externalIDs(got.upserts), []string{ids[1]}) {
		t.Errorf("upserts %v, want %s (stamped 2 minutes before the cursor)", externalIDs(got.upserts), ids[1])
	}
	o.sameAsFull(t, cfg, got)
}

func TestIncrementalWithoutSystemLog(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(3, nil)
	cfg := o.source()
	cursor := o.first(t, cfg)
	o.DenyLogs(true)
	o.DeleteUser(ids[0])
	o.UpdateUser(ids[1], func(u *oktatest.User) { u.Profile["title"] = "Boss" })
	got, err := o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !got.res.NoDeletes || got.res.Full {
		t.Errorf("result %+v, want NoDeletes", got.res)
	}
	if len(got.deletes) != 0 || !slices.Equal(externalIDs(got.upserts), []string{ids[1]}) {
		t.Errorf("deletes %v, upserts %v; want no delete, %s upserted", got.deletes, externalIDs(got.upserts), ids[1])
	}
	if n := got.logs.FilterMessageSnippet("may not read the System Log").Len(); n != 1 {
		t.Errorf("%d log lines say the System Log cannot be read, want 1", n)
	}
	o.sameAsFull(t, cfg, got)
}

func TestIncrementalFallback(t *testing.T) {
	o := newOrg(t, 0)
	o.people(3, nil)
	cfg := o.source()
	o.first(t, cfg)
	old := "okta1 " + o.clock.Now().Add(-91*24*time.Hour).Format("2006-01-02T15:04:05.000Z")
	for _, cursor := range []string{"garbage", "okta1 yesterday", "csv1 1 2 3", old} {
		got, err := o.pullChanges(t, cfg, cursor)
		if err != nil {
			t.Fatalf("cursor %q: %v", cursor, err)
		}
		if !got.res.Full || got.res.Fallback == "" || got.res.Cursor == "" {
			t.Errorf("cursor %q: result %+v, want Full with a fallback", cursor, got.res)
		}
		full, _, err := o.pull(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(full, got.upserts); diff != "" {
			t.Errorf("cursor %q: not a full pull (-pull +changes):\n%s", cursor, diff)
		}
	}
}

// throttleOnce is a transport that makes Okta answer 429 to the nth user
// list request, as if another client had used up the limit then.
type throttleOnce struct {
	org  *org
	n    int
	mu   sync.Mutex
	seen int
}

func (t *throttleOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/api/v1/users" {
		t.mu.Lock()
		t.seen++
		if t.seen == t.n {
			t.org.Throttle(1)
		}
		t.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestIncremental429AndCutShort(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(300, nil)
	cfg := o.source()
	cursor := o.first(t, cfg)
	for _, id := range ids[:250] {
		o.UpdateUser(id, func(u *oktatest.User) { u.Profile["title"] = "Engineer" })
	}
	got, err := o.pullChanges(t, cfg, cursor, func(opt *okta.Options) { opt.Transport = &throttleOnce{org: o, n: 2} })
	if err != nil {
		t.Fatalf("a 429 on page 2: %v", err)
	}
	if len(got.upserts) != 250 || o.Counts()["429"] != 1 {
		t.Errorf("%d upserts, %d 429s; want 250 after one retry", len(got.upserts), o.Counts()["429"])
	}
	o.sameAsFull(t, cfg, got)

	o.Fail(2, oktatest.Fault500)
	got, err = o.pullChanges(t, cfg, cursor)
	if err == nil || !strings.Contains(err.Error(), "page 2") {
		t.Errorf("a 500 on page 2: error %v, want one naming page 2", err)
	}
	if got.res.Cursor != "" {
		t.Errorf("a read cut short gave cursor %q", got.res.Cursor)
	}
}

func TestIncrementalGroupMembership(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(4, func(i int, u *oktatest.User) {
		if i < 2 {
			u.Groups = []string{"Staff"}
		}
	})
	o.AddGroup("Partners")
	cfg := o.source()
	cfg.Groups = []string{"Staff"}
	cfg.AreaRules = []config.AreaRule{{Group: "Partners", Area: "partners"}}
	cursor := o.first(t, cfg)
	o.UpdateUser(ids[0], func(u *oktatest.User) { u.Groups = nil })                           // leaves the scope
	o.UpdateUser(ids[2], func(u *oktatest.User) { u.Groups = []string{"Staff"} })             // joins it
	o.UpdateUser(ids[1], func(u *oktatest.User) { u.Groups = []string{"Staff", "Partners"} }) // an area rule's group
	o.UpdateUser(ids[3], func(u *oktatest.User) { u.Groups = []string{"Partners"} })          // not in scope
	got, err := o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got.res.NoDeletes || got.res.Full {
		t.Errorf("result %+v", got.res)
	}
	if diff := cmp.Diff(sorted([]string{ids[1], ids[2]}), externalIDs(got.upserts)); diff != "" {
		t.Errorf("upserts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted([]string{ids[0], ids[3]}), sorted(got.deletes)); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
	o.sameAsFull(t, cfg, got)

	// Without the System Log, membership changes wait for a full pull.
	o.DenyLogs(true)
	o.UpdateUser(ids[1], func(u *oktatest.User) { u.Groups = nil })
	got, err = o.pullChanges(t, cfg, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !got.res.NoDeletes || len(got.deletes) != 0 {
		t.Errorf("without the System Log: %+v, deletes %v; want NoDeletes and none", got.res, got.deletes)
	}
}
