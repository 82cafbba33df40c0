package reconcile

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/seatsync/seatsync/model"
)

func sampleReport() *Report {
	p := planFor(nil, pools(1, 10), hr(person("1", "alice"), person("2", "bob", disabled, func(i *model.Identity) { i.Title = "R&D <lead> \u2028" }), person("3", "carol")))
	r := &Report{RunID: "01TEST", Mode: ModePlan, StartedAt: now, FinishedAt: now, Result: ResultChanges}
	r.fill(p)
	return r
}

// EncodeJSON must give exactly what encoding/json gives for the report.
func TestEncodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, r := range []*Report{sampleReport(), {RunID: "empty", Changes: []Change{}}, {RunID: "nil"}} {
		got, err := r.EncodeJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal((*reportFields)(r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("report %s:\n got: %s\nwant: %s", r.RunID, got, want)
		}
	}
}

func TestReportFormats(t *testing.T) {
	r := sampleReport()
	for _, format := range Formats {
		var b strings.Builder
		if err := r.Write(&b, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := b.String()
		for _, want := range []string{"alice", "carol", "license"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report lacks %q:\n%s", format, want, out)
			}
		}
	}
	var b strings.Builder
	if err := r.Write(&b, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
	var decoded Report
	b.Reset()
	_ = r.Write(&b, "json")
	if err := json.Unmarshal([]byte(b.String()), &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Changes) != 3 || decoded.Changes[0].State != model.Active {
		t.Errorf("decoded changes: %+v", decoded.Changes)
	}
}

// The text and markdown reports say how each source was read, and why a
// source that reads incrementally was read in full.
func TestReportSaysHowSourcesWereRead(t *testing.T) {
	r := sampleReport()
	r.Sources = []SourceResult{
		{Name: "hr", Type: "csv", Identities: 3, Full: true},
		{Name: "ad", Type: "ldap", Identities: 2, Incremental: true, Deletes: 2},
		{Name: "okta", Type: "okta", Identities: 1, Incremental: true, NoDeletes: true},
		{Name: "ldap", Type: "ldap", Identities: 9, Incremental: true, Full: true, IncrementalFallback: "the server refused the sync cookie"},
	}
	for format, want := range map[string][]string{
		"text": {"READ", "changes, 2 deleted", "changes, no deletes", "source ldap was read in full: the server refused the sync cookie"},
		"markdown": {"| read |", "| ad | ldap | changes, 2 deleted | 2 | 0 |", "| okta | okta | changes, no deletes |",
			"> **Source ldap was read in full:** the server refused the sync cookie"},
	} {
		var b bytes.Buffer
		if err := r.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("the %s report lacks %q:\n%s", format, w, b.String())
			}
		}
	}
}

// The json report is the compact document, indented: the same bytes
// json.Indent gives, though it is indented as it is encoded.
func TestReportJSONIndented(t *testing.T) {
	r := sampleReport()
	compact, err := r.EncodeJSON()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Indent(&want, compact, "", "  "); err != nil {
		t.Fatal(err)
	}
	want.WriteByte('\n')
	var got bytes.Buffer
	if err := r.Write(&got, "json"); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("json report:\n%s\nwant\n%s", got.String(), want.String())
	}
}
