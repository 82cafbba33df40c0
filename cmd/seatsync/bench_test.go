package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchDir writes a configuration and an HR export of n people.
func benchDir(b *testing.B, n int) string {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "people.csv"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "external_id,username,email,given_name,family_name,department,groups,enabled")
	for i := range n {
		fmt.Fprintf(w, "E%d,user%d,user%d@example.com,Given%d,Family%d,Dept%d,staff|team%d,yes\n", i, i, i, i, i, i%20, i%50)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cfg := `version: 1
store: {path: seatsync.db}
licensing:
  pools: [{name: primary, limit: 90000, areas: [primary]}]
sources:
  - {name: hr, type: csv, path: people.csv}
log: {level: warn}
`
	if err := os.WriteFile(filepath.Join(dir, "seatsync.yaml"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

func cliSync(b *testing.B, dir string, flags ...string) {
	code := run(context.Background(), append([]string{"sync", "-c", filepath.Join(dir, "seatsync.yaml")}, flags...), io.Discard, io.Discard)
	if code != exitOK {
		b.Fatalf("sync exit %d", code)
	}
}

// BenchmarkCLISyncFirst100k is `seatsync sync` end to end, as an admin
// runs it: load the configuration, open an empty store, pull 100,000 CSV
// rows, plan, apply, record the run, print the text report, close the
// store. Target: under 5 s.
func BenchmarkCLISyncFirst100k(b *testing.B) {
	dir := benchDir(b, 100_000)
	db := filepath.Join(dir, "seatsync.db")
	for b.Loop() {
		b.StopTimer()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(db + suffix)
		}
		b.StartTimer()
		cliSync(b, dir)
	}
}

// BenchmarkCLISyncNoop100k is the same sync run again when nothing
// changed. Target: under 2 s.
func BenchmarkCLISyncNoop100k(b *testing.B) {
	dir := benchDir(b, 100_000)
	cliSync(b, dir)
	b.ResetTimer()
	for b.Loop() {
		cliSync(b, dir, "--full") // an unchanged csv file is otherwise not planned at all
	}
}
