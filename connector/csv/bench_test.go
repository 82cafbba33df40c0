package csv

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// BenchmarkPull100k pulls a 100,000-row export with every mapped field,
// a quoted display name and two extra columns.
func BenchmarkPull100k(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "export.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("employee_id;login;mail;given_name;family_name;display_name;title;department;teams;active;cost_center;phone\n")
	for i := range n {
		s := strconv.Itoa(i)
		w.WriteString("E" + s + ";user" + s + ";user" + s + "@example.com;Given" + s + ";Family" + s +
			";\"Family" + s + "; Given" + s + "\";Engineer;R&D;staff|eng|team-" + strconv.Itoa(i%50) +
			";yes;CC" + strconv.Itoa(i%20) + ";+1 555 0100\n")
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}

	src, err := Open(config.Source{
		Name: "hr", Type: "csv", Settings: &Settings{Path: path, Delimiter: ";"},
		Mapping: map[string]string{
			"external_id": "employee_id", "username": "login", "email": "mail",
			"groups": "teams", "enabled": "active",
		},
	}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		count := 0
		err := src.Pull(context.Background(),
			func(model.Identity) error { count++; return nil },
			func(s connector.Skip) { b.Fatalf("skipped: %+v", s) })
		if err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("pulled %d identities, want %d", count, n)
		}
	}
}
