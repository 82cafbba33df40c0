package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
)

// queuePolicy has two pools and one priority group.
func queuePolicy() *licensing.Policy {
	return licensing.NewPolicy([]licensing.Pool{
		{Name: "primary", Limit: 1, Areas: []string{"primary"}},
		{Name: "extranet", Limit: 1, Areas: []string{"partners"}},
	}, []string{"admin"}, []licensing.PriorityRule{{Group: "Executives", Weight: 100}}, "")
}

func queued(username, area string, at time.Time, groups ...string) model.Profile {
	return model.Profile{Username: username, Area: area, State: model.Blocked, BlockReason: model.ReasonLicense, QueuedAt: at, Groups: groups}
}

// queueProfiles: in primary, exec (priority, queued last) goes first,
// then bob before amy (earlier), then cat before dan (same time, by
// username); extranet has its own queue; the exempt admin, an active
// profile and an admin block are not queued.
func queueProfiles() []model.Profile {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return []model.Profile{
		queued("amy", "primary", t0.Add(2*time.Hour)),
		queued("dan", "primary", t0.Add(3*time.Hour)),
		queued("pat", "partners", t0.Add(time.Hour)),
		queued("cat", "primary", t0.Add(3*time.Hour)),
		queued("exec", "primary", t0.Add(9*time.Hour), "Staff", "Executives"),
		queued("bob", "primary", t0.Add(time.Hour)),
		queued("admin", "primary", t0),
		queued("pia", "partners", t0),
		{Username: "zoe", Area: "primary", State: model.Active},
		{Username: "abe", Area: "primary", State: model.Blocked, BlockReason: model.ReasonAdmin},
	}
}

// TestQueueOrder: weight beats time, time beats username, each pool on
// its own; QueueOrder sorts a listing so and puts the unqueued last.
func TestQueueOrder(t *testing.T) {
	pol, profiles := queuePolicy(), queueProfiles()
	var got []string
	for _, q := range pol.Queue(profiles) {
		got = append(got, fmt.Sprintf("%s %d %s", q.Pool, q.Position, q.Username))
	}
	want := []string{
		"primary 1 exec", "primary 2 bob", "primary 3 amy", "primary 4 cat", "primary 5 dan",
		"extranet 1 pia", "extranet 2 pat",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}

	admin.QueueOrder(profiles, pol.Queue(profiles))
	var names []string
	for _, p := range profiles {
		names = append(names, p.Username)
	}
	if diff := cmp.Diff([]string{"exec", "bob", "amy", "cat", "dan", "pia", "pat", "abe", "admin", "zoe"}, names); diff != "" {
		t.Errorf("QueueOrder (-want +got):\n%s", diff)
	}
}

// TestProfilesQueuePosition: queue_position is the place in the pool's
// queue of all profiles (not of the ones written), empty in csv and null
// in json when not queued; pool is the pool's name.
func TestProfilesQueuePosition(t *testing.T) {
	pol, profiles := queuePolicy(), queueProfiles()
	fields, err := admin.ParseFields("username,queue_position,pool")
	if err != nil {
		t.Fatal(err)
	}
	some := []model.Profile{profiles[3], profiles[2], profiles[8]} // cat, pat, zoe
	var buf bytes.Buffer
	if err := admin.WriteProfiles(&buf, some, pol, admin.ListOptions{Format: "csv", Fields: fields, Queue: pol.Queue(profiles)}); err != nil {
		t.Fatal(err)
	}
	if want := "username,queue_position,pool\ncat,4,primary\npat,2,extranet\nzoe,,primary\n"; buf.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := admin.WriteProfiles(&buf, some, pol, admin.ListOptions{Format: "json", Fields: fields, Queue: pol.Queue(profiles)}); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"username": "cat", "queue_position": 4.0, "pool": "primary"},
		{"username": "pat", "queue_position": 2.0, "pool": "extranet"},
		{"username": "zoe", "queue_position": nil, "pool": "primary"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
}

// TestSeatsQueue: seats shows the first ten of each pool's queue, keeps
// the panel's keys, and says how many more wait.
func TestSeatsQueue(t *testing.T) {
	pol := queuePolicy()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var profiles []model.Profile
	for i := range 12 {
		profiles = append(profiles, queued(string(rune('a'+i))+"user", "primary", t0.Add(time.Duration(i)*time.Minute)))
	}
	var buf bytes.Buffer
	if err := admin.WriteSeats(&buf, pol.Count(profiles), pol.Queue(profiles), nil, "json"); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Pools []struct {
			Name   string `json:"name"`
			Queued int    `json:"queued"`
			Queue  []struct {
				Position int       `json:"position"`
				Username string    `json:"username"`
				QueuedAt time.Time `json:"queued_at"`
			} `json:"queue"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(out.Pools) != 2 || out.Pools[0].Queued != 12 || len(out.Pools[0].Queue) != 10 || out.Pools[1].Queue == nil || len(out.Pools[1].Queue) != 0 {
		t.Fatalf("seats json:\n%s", buf.String())
	}
	for i, q := range out.Pools[0].Queue {
		if q.Position != i+1 || q.Username != profiles[i].Username || !q.QueuedAt.Equal(profiles[i].QueuedAt) {
			t.Errorf("queue[%d] = %+v, want %d %s", i, q, i+1, profiles[i].Username)
		}
	}
	buf.Reset()
	if err := admin.WriteSeats(&buf, pol.Count(profiles), pol.Queue(profiles), nil, "text"); err != nil {
		t.Fatal(err)
	}
	if want := "primary queue: 1 auser (since 2026-03-01 09:00), 2 buser (since 2026-03-01 09:01)"; !bytes.Contains(buf.Bytes(), []byte(want)) || !bytes.Contains(buf.Bytes(), []byte("(since 2026-03-01 09:09), and 2 more\n")) {
		t.Errorf("seats text:\n%s\nwant a line starting %q", buf.String(), want)
	}
	if bytes.Contains(buf.Bytes(), []byte("extranet queue")) {
		t.Errorf("seats text shows an empty queue:\n%s", buf.String())
	}
}
