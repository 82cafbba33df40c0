package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
)

// changeTags is Change without its methods: encoding/json encodes it by
// reflection, from the struct tags alone.
type changeTags Change

// reflectedChange is what encoding/json alone makes of a change: its
// tagged fields, then its field changes as a plain map (no MarshalJSON
// anywhere), left out when there are none.
func reflectedChange(t *testing.T, c *Change) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		changeTags
		Fields map[string]FieldChange `json:"fields,omitempty"`
	}{changeTags(*c), map[string]FieldChange(c.FieldChanges())})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Texts that encode in every way encoding/json knows: escapes, HTML
// characters, the JavaScript line separators, invalid UTF-8, non-ASCII.
var awkwardTexts = []string{
	"", "", "a", "user0", "Jöhn", "日本語", "e\u0301", "R&D <lead>", "</script>", "a\u2028b\u2029",
	"bad \xff\xfe utf8", "\xe2\x82", "tab\tnl\ncr\r", `quo"te\back`, "\x00\x01\x1f\x7f", "\b\f", "😀",
}

func awkward(rng *rand.Rand) string { return awkwardTexts[rng.IntN(len(awkwardTexts))] }

func randomGroups(rng *rand.Rand) []string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	g := make([]string, 1+rng.IntN(3))
	for i := range g {
		g[i] = awkward(rng)
	}
	return g
}

// Attribute keys include some that sort differently as bytes and as
// text, and prefixes of each other.
var attrKeys = []string{"a", "A", "b", "a.b", "ab", "company", "ü", "z<x>", "\xff", "", "employeeNumber"}

func randomAttributes(rng *rand.Rand) map[string]string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	m := map[string]string{}
	for range 1 + rng.IntN(4) {
		m[attrKeys[rng.IntN(len(attrKeys))]] = awkward(rng)
	}
	return m
}

func randomTime(rng *rand.Rand) time.Time {
	if rng.IntN(2) == 0 {
		return time.Time{}
	}
	return now.Add(-time.Duration(rng.IntN(1e6)) * time.Second)
}

func randomProfile(rng *rand.Rand) *model.Profile {
	p := &model.Profile{
		ID: rng.Int64N(1000), Version: rng.Int64N(5),
		Username: awkward(rng), Email: awkward(rng), GivenName: awkward(rng), FamilyName: awkward(rng),
		DisplayName: awkward(rng), Title: awkward(rng), Department: awkward(rng),
		Groups: randomGroups(rng), Attributes: randomAttributes(rng),
		Area: awkward(rng), State: model.State(awkward(rng)), BlockReason: model.Reason(awkward(rng)),
		Source: awkward(rng), ExternalID: awkward(rng),
		QueuedAt: randomTime(rng), ActivatedAt: randomTime(rng), BlockedAt: randomTime(rng),
		CreatedAt: randomTime(rng), UpdatedAt: randomTime(rng),
	}
	return p
}

// nearby returns a copy of p with a few fields changed, as most updates
// are.
func nearby(rng *rand.Rand, p *model.Profile) *model.Profile {
	q := p.Clone()
	for range rng.IntN(4) {
		switch rng.IntN(8) {
		case 0:
			q.Email = awkward(rng)
		case 1:
			q.Username = awkward(rng)
		case 2:
			q.Groups = randomGroups(rng)
		case 3:
			q.Attributes = randomAttributes(rng)
		case 4:
			if q.Attributes != nil {
				q.Attributes[attrKeys[rng.IntN(len(attrKeys))]] = awkward(rng)
			}
		case 5:
			q.Area = awkward(rng)
		case 6:
			q.Title = awkward(rng)
		case 7:
			q.Source, q.ExternalID = awkward(rng), awkward(rng)
		}
	}
	return &q
}

// randomChange is a change of any shape: create, update (of a few fields
// or of all), delete; every optional member set or not.
func randomChange(rng *rand.Rand) Change {
	c := Change{
		Action: Action(awkward(rng)), Username: awkward(rng), Source: awkward(rng),
		ExternalID: awkward(rng), Area: awkward(rng), Pool: awkward(rng), State: model.State(awkward(rng)),
		Reason: awkward(rng), Result: awkward(rng),
	}
	if rng.IntN(2) == 0 {
		c.QueuePosition = rng.IntN(100_000) - 10
	}
	if rng.IntN(4) == 0 { // a grant or recall: a product, and no profiles
		c.Product = awkward(rng)
		return c
	}
	switch rng.IntN(4) {
	case 0: // create
		c.After = randomProfile(rng)
	case 1: // delete
		c.Before = randomProfile(rng)
	case 2: // update of a few fields, or none
		c.Before = randomProfile(rng)
		c.After = nearby(rng, c.Before)
	case 3: // update of anything
		c.Before, c.After = randomProfile(rng), randomProfile(rng)
	}
	return c
}

// A report's changes are encoded by hand; they must come out exactly as
// encoding/json's reflection would write them.
func TestChangeJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fixed := []Change{
		{},
		{Action: ActionCreate, After: &model.Profile{}},
		{Action: ActionCreate, After: &model.Profile{Groups: []string{}, Attributes: map[string]string{}}},
		{Action: ActionUpdate, Before: &model.Profile{}, After: &model.Profile{Groups: []string{"a"}}},
		{Action: ActionUpdate, Before: &model.Profile{Groups: []string{"a"}}, After: &model.Profile{}},
		{Action: ActionUpdate, Before: &model.Profile{Groups: []string{}}, After: &model.Profile{}},
		{Action: ActionUpdate, Before: &model.Profile{Attributes: map[string]string{"a": "1", "b": "2"}},
			After: &model.Profile{Attributes: map[string]string{"b": "3", "c": "<&>"}}},
		{Action: ActionDelete, Before: &model.Profile{Username: "x"}, QueuePosition: -1},
		{Action: ActionGrant, Product: "crm", Username: "x", State: model.Active, Reason: ReasonQueued, QueuePosition: 2},
	}
	for i := range 5000 {
		c := randomChange(rng)
		if i < len(fixed) {
			c = fixed[i]
		}
		want := reflectedChange(t, &c)
		if got := c.appendJSON([]byte("prefix")); !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("change %d (%+v):\n got: %s\nwant: %s", i, c, got[len("prefix"):], want)
		}
		got, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("json.Marshal of change %d:\n got: %s\nwant: %s", i, got, want)
		}
	}
}

// fieldDiffs must list what the field diff always listed: checked against
// a plain rewrite of the rules.
func TestFieldChangesRules(t *testing.T) {
	before := &model.Profile{Username: "jdoe", Email: "a@x", Groups: nil, Attributes: map[string]string{"k": "1", "gone": "2"},
		Area: "primary", Source: "hr", ExternalID: "E1", State: model.Active}
	after := &model.Profile{Username: "jdoe2", Email: "a@x", Title: "Boss", Groups: []string{"g"},
		Attributes: map[string]string{"k": "1", "new": "3"}, Area: "partners", Source: "hr", ExternalID: "E1",
		State: model.Blocked, BlockReason: model.ReasonLicense}
	want := Fields{
		"username":        {Old: "jdoe", New: "jdoe2"},
		"title":           {Old: "", New: "Boss"},
		"groups":          {Old: []string(nil), New: []string{"g"}},
		"attributes.gone": {Old: "2", New: nil},
		"attributes.new":  {Old: nil, New: "3"},
		"area":            {Old: "primary", New: "partners"},
	}
	if diff := cmp.Diff(want, fieldChanges(before, after)); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	want = Fields{
		"email":          {Old: nil, New: "a@x"},
		"title":          {Old: nil, New: "Boss"},
		"groups":         {Old: nil, New: []string{"g"}},
		"attributes.k":   {Old: nil, New: "1"},
		"attributes.new": {Old: nil, New: "3"},
	}
	if diff := cmp.Diff(want, fieldChanges(nil, after)); diff != "" {
		t.Errorf("create (-want +got):\n%s", diff)
	}
	if f := fieldChanges(before, nil); f != nil {
		t.Errorf("delete: %v, want none", f)
	}
	if f := fieldChanges(before, before); f != nil {
		t.Errorf("no change: %v, want none", f)
	}
}

// randomReport is a report with n random changes and every other member
// filled in.
func randomReport(rng *rand.Rand, n int) *Report {
	r := sampleReport()
	r.Error = "pull failed: <x> & \u2028"
	r.FinishedAt = time.Time{}
	r.Changes = make([]Change, n)
	for i := range r.Changes {
		r.Changes[i] = randomChange(rng)
	}
	return r
}

// WriteJSON and EncodeJSON give json.Marshal's document, also when the
// changes span many of WriteJSON's pieces.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, r := range []*Report{randomReport(rng, 3000), sampleReport(), {RunID: "empty", Changes: []Change{}}, {RunID: "nil"}} {
		want, err := json.Marshal((*reportFields)(r))
		if err != nil {
			t.Fatal(err)
		}
		var w countingWriter
		if err := r.WriteJSON(&w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), want) {
			t.Errorf("WriteJSON of report %s differs from json.Marshal:\n got: %.300s\nwant: %.300s", r.RunID, w.Bytes(), want)
		}
		if len(r.Changes) > 1000 && w.writes < 10 {
			t.Errorf("WriteJSON wrote %d bytes in %d writes, want it in pieces", w.Len(), w.writes)
		}
		got, err := r.EncodeJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("EncodeJSON of report %s differs from json.Marshal", r.RunID)
		}
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestWriteJSONStopsAtWriteError(t *testing.T) {
	r := randomReport(rand.New(rand.NewPCG(5, 6)), 1000)
	boom := errors.New("disk full")
	if err := r.WriteJSON(failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteJSON = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func BenchmarkWriteJSON100k(b *testing.B) {
	r := &Report{RunID: "bench", Changes: make([]Change, 100_000)}
	for i := range r.Changes {
		p := &model.Profile{Username: "user" + strings.Repeat("x", i%7), Email: "user@example.com", GivenName: "Given",
			FamilyName: "Family", Department: "Dept", Groups: []string{"staff", "team1"}, Area: "primary", State: model.Active}
		r.Changes[i] = Change{Action: ActionCreate, Username: p.Username, Source: "hr", ExternalID: "E1", Area: "primary",
			Pool: "primary", State: model.Active, Result: ResultApplied, After: p}
	}
	var w countingWriter
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		if err := r.WriteJSON(&w); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(w.Len()))
}
