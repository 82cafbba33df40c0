package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

// TestStoredReportIsTheReport: the report a sync records (its changes
// compressed while the apply runs, batch by batch) is, byte for byte, the
// JSON of the report the sync returns, whatever the order the apply wrote
// the changes in and whatever their results: creates, seats refused
// (no_seat), product grants, then updates, blocks and deletes.
func TestStoredReportIsTheReport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	people := filepath.Join(dir, "people.csv")
	writePeople(t, people, 40)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := benchConfig(dir)
	cfg.Licensing.Pools[0].Limit.N = 25
	cfg.Safety.MaxDeprovision = config.Threshold{Percent: true, Value: 100, Set: true}
	cfg.Licensing.Products = []config.Product{{Name: "crm", Limit: config.Limit{N: 3}, Grant: []config.GrantRule{{Group: "team1"}, {Group: "team2"}}}}
	r := &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"csv": csvsource.Kind}, Log: zap.NewNop(), BatchSize: 3}
	check := func(name string) *reconcile.Report {
		t.Helper()
		rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := rep.EncodeJSON()
		if err != nil {
			t.Fatal(err)
		}
		run, err := st.Run(ctx, rep.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(run.Report, want) {
			t.Errorf("%s: the stored report differs from the report:\nstored %s\nreport %s", name, run.Report, want)
		}
		var std bytes.Buffer
		if err := json.NewEncoder(&std).Encode(rep); err != nil || !bytes.Equal(bytes.TrimSpace(std.Bytes()), want) {
			t.Errorf("%s: the report's JSON is not encoding/json's (%v)", name, err)
		}
		return rep
	}
	rep := check("first sync")
	if rep.Summary.Create != 40 || rep.Summary.Grant == 0 {
		t.Fatalf("first sync summary = %+v, want 40 creates and grants", rep.Summary)
	}
	// Fewer people, some of them changed: updates, blocks, activations.
	writePeople(t, people, 30)
	b, err := os.ReadFile(people)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(people, bytes.ReplaceAll(b, []byte(",Dept1,"), []byte(",Sales,")), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := check("second sync"); len(rep.Changes) == 0 {
		t.Fatal("second sync changed nothing")
	}
}
