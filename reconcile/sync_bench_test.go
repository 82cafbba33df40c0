package reconcile_test

import (
	"bufio"
	"context"
	"fmt"
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

// writePeople writes an HR export of n people.
func writePeople(tb testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "external_id,username,email,given_name,family_name,department,groups,enabled")
	for i := range n {
		fmt.Fprintf(w, "E%d,user%d,user%d@example.com,Given%d,Family%d,Dept%d,staff|team%d,yes\n", i, i, i, i, i, i%20, i%50)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func benchConfig(dir string) *config.Config {
	var cfg config.Config
	cfg.Version = 1
	cfg.Licensing.Pools = []config.Pool{{Name: "primary", Limit: config.Limit{N: 90_000}, Areas: []string{"primary"}}}
	cfg.Licensing.OnOverage = "keep"
	cfg.Safety.MaxDeprovision = config.Threshold{Percent: true, Value: 10, Set: true}
	cfg.Sources = []config.Source{{Name: "hr", Type: "csv", Settings: &csvsource.Settings{Path: filepath.Join(dir, "people.csv"), Delimiter: ","},
		Area: "primary", OnLeave: "block", UsernameCase: "lower"}}
	return &cfg
}

func benchRunner(b *testing.B, cfg *config.Config, dbPath string) (*reconcile.Runner, func()) {
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		b.Fatal(err)
	}
	return &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"csv": csvsource.Kind}, Log: zap.NewNop()},
		func() { st.Close() }
}

// BenchmarkSyncFirst100k: a first sync of 100,000 CSV identities into an
// empty SQLite store (pull, plan, apply, audit, run record). Target: < 5 s.
func BenchmarkSyncFirst100k(b *testing.B) {
	dir := b.TempDir()
	writePeople(b, filepath.Join(dir, "people.csv"), 100_000)
	cfg := benchConfig(dir)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		r, done := benchRunner(b, cfg, filepath.Join(dir, fmt.Sprintf("first%d.db", i)))
		b.StartTimer()
		rep, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Summary.Create != 100_000 {
			b.Fatalf("created %d, want 100000", rep.Summary.Create)
		}
		done()
		b.StartTimer()
	}
}

// BenchmarkSyncNoop100k: a re-sync of the same 100,000 identities that
// changes nothing. Target: < 2 s.
func BenchmarkSyncNoop100k(b *testing.B) {
	dir := b.TempDir()
	writePeople(b, filepath.Join(dir, "people.csv"), 100_000)
	cfg := benchConfig(dir)
	r, done := benchRunner(b, cfg, filepath.Join(dir, "noop.db"))
	defer done()
	if _, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		// --full: an unchanged csv file is otherwise not planned at all
		// (BenchmarkSyncUnchanged100k).
		rep, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync, Full: true})
		if err != nil {
			b.Fatal(err)
		}
		if n := rep.Summary.Total(); n != 0 {
			b.Fatalf("no-op sync made %d changes", n)
		}
	}
}

// BenchmarkSyncUnchanged100k: a re-sync of an unchanged export of
// 100,000, read incrementally: the file is read and hashed, nothing is
// planned.
func BenchmarkSyncUnchanged100k(b *testing.B) {
	dir := b.TempDir()
	writePeople(b, filepath.Join(dir, "people.csv"), 100_000)
	r, done := benchRunner(b, benchConfig(dir), filepath.Join(dir, "unchanged.db"))
	defer done()
	if _, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
		if err != nil {
			b.Fatal(err)
		}
		if s := rep.Sources[0]; s.Full || s.Identities != 0 {
			b.Fatalf("the unchanged file was planned: %+v", s)
		}
	}
}
