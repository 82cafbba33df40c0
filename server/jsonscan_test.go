package server

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/target"
)

// readReportLibrary is readReport done by encoding/json alone: every row
// decoded, then the first kept.
func readReportLibrary(raw []byte, rows int) (*storedReport, error) {
	var l struct {
		RunID   string                   `json:"run_id"`
		Mode    string                   `json:"mode"`
		Sources []reconcile.SourceResult `json:"sources"`
		Pools   []reconcile.PoolResult   `json:"pools"`
		Changes []changeRow              `json:"changes"`
		Skipped []reconcile.Skipped      `json:"skipped"`
		Guard   reconcile.Guard          `json:"guard"`
		Targets []target.Result          `json:"targets"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, err
	}
	return &storedReport{RunID: l.RunID, Mode: l.Mode, Sources: l.Sources, Pools: l.Pools, Guard: l.Guard, Targets: l.Targets,
		Changes: capped[changeRow]{Rows: l.Changes[:min(rows, len(l.Changes))], Total: len(l.Changes), max: rows},
		Skipped: capped[reconcile.Skipped]{Rows: l.Skipped[:min(rows, len(l.Skipped))], Total: len(l.Skipped), max: rows},
	}, nil
}

var reportsEqual = []cmp.Option{cmp.AllowUnexported(capped[changeRow]{}, capped[reconcile.Skipped]{}), cmpopts.EquateEmpty()}

// fuzzReport is a report whose user data is s, in every shape JSON
// gives it: escaped, nested in lists, in keys.
func fuzzReport(s string, n int) []byte {
	type field struct {
		Old any `json:"old"`
		New any `json:"new"`
	}
	type change struct {
		Action   string           `json:"action"`
		Username string           `json:"username"`
		Fields   map[string]field `json:"fields"`
	}
	rep := map[string]any{"run_id": s, "mode": "sync", "summary": map[string]int{"create": n}, "x-" + s: []any{s, map[string]string{s: s}},
		"sources": []reconcile.SourceResult{{Name: s, Identities: n}}, "guard": reconcile.Guard{Tripped: true, Deprovisions: n},
		"targets": []target.Result{{Name: s, Error: s}}}
	var changes []change
	var skipped []reconcile.Skipped
	for i := range n {
		changes = append(changes, change{Action: "update", Username: s + strconv.Itoa(i),
			Fields: map[string]field{"display_name": {Old: s, New: []any{s, "[{\"", nil}}, "attributes." + s: {New: s}}})
		skipped = append(skipped, reconcile.Skipped{Source: s, ExternalID: strconv.Itoa(i), Reason: s})
	}
	rep["changes"], rep["skipped"] = changes, skipped
	b, err := json.Marshal(rep)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzReadReport: the page reads a report as encoding/json does, whatever
// its user data; and bytes that are not a report are refused, never a
// panic.
func FuzzReadReport(f *testing.F) {
	f.Add(`jdoe`, uint8(3), []byte(`{"changes":[1,2],"skipped":null}`))
	f.Add(`"]}\\\"[{`, uint8(7), []byte(`{"changes":[{"a":"]"}`))
	f.Add("日本\u2028\x7f", uint8(0), []byte(` { "changes" : [ ] , "skipped" : [ {} ] } `))
	f.Add(``, uint8(1), []byte(`[`))
	f.Add(`a`, uint8(2), hugeReport("R", 3, 2, 2))
	f.Fuzz(func(t *testing.T, s string, n uint8, raw []byte) {
		rows := int(n % 4)
		_, _ = readReport(raw, rows) // any bytes: no panic
		b := fuzzReport(s, int(n%9))
		want, err := readReportLibrary(b, rows)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readReport(b, rows)
		if err != nil {
			t.Fatalf("readReport refuses %s: %v", b, err)
		}
		if diff := cmp.Diff(want, got, reportsEqual...); diff != "" {
			t.Errorf("readReport of %s (-encoding/json +readReport):\n%s", b, diff)
		}
	})
}

func TestReadReportRefusesBrokenJSON(t *testing.T) {
	for _, raw := range []string{``, `[]`, `{`, `{"changes":[1,2}`, `{"changes":[1,2]`, `{"changes":"x"}`, `{"a":1,}`, `{"a" 1}`, `{"a":1} x`,
		`{"changes":[1,]}`, `{"skipped":[{"reason":"\"}]}`, `{"a":}`, `{"pools":tru}`} {
		if _, err := readReport([]byte(raw), 2); err == nil {
			t.Errorf("readReport(%s) took it", raw)
		}
	}
}

// BenchmarkReadReport reads a first sync's report of 100,000 changes for
// its page, as readReport does and as encoding/json alone would.
func BenchmarkReadReport(b *testing.B) {
	raw := hugeReport("BIG", 100_000, 100_000, 10)
	for _, c := range []struct {
		name string
		read func([]byte, int) (*storedReport, error)
	}{{"scan", readReport}, {"library", readReportLibrary}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := c.read(raw, DefaultReportRows); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
