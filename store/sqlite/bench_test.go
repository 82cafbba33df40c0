package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// benchProfile is a profile as a directory sync makes it: a few groups,
// a couple of attributes, most times set.
func benchProfile(i int, now time.Time) model.Profile {
	return model.Profile{
		Username:    fmt.Sprintf("user%06d", i),
		Email:       fmt.Sprintf("user%06d@corp.example.com", i),
		GivenName:   "Given",
		FamilyName:  fmt.Sprintf("Family%d", i),
		DisplayName: fmt.Sprintf("Given Family%d", i),
		Title:       "Engineer",
		Department:  "Research",
		Groups: []string{
			"CN=App Users,OU=Groups,DC=corp,DC=example",
			"CN=Staff,OU=Groups,DC=corp,DC=example",
			fmt.Sprintf("CN=Team %d,OU=Groups,DC=corp,DC=example", i%50),
		},
		Attributes:  map[string]string{"company": "Example Ltd", "employeeNumber": fmt.Sprint(i)},
		Area:        "primary",
		State:       model.Active,
		Source:      "corp-ad",
		ExternalID:  fmt.Sprintf("guid-%08x", i*2654435761),
		ActivatedAt: now,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
}

func benchProfiles(n int) []model.Profile {
	now := time.Now().UTC()
	ps := make([]model.Profile, n)
	for i := range ps {
		ps[i] = benchProfile(i, now)
	}
	return ps
}

// firstSync inserts ps with an audit entry each, batch profiles per
// transaction, as the first sync of a large directory does.
func firstSync(ctx context.Context, s *Store, ps []model.Profile, batch int) error {
	now := time.Now().UTC()
	var buf []byte // the audit entries' JSON, as the apply reuses it
	for start := 0; start < len(ps); start += batch {
		err := s.WithTx(ctx, func(tx store.Tx) error {
			for i := start; i < min(start+batch, len(ps)); i++ {
				p := &ps[i]
				if err := tx.Insert(ctx, p); err != nil {
					return err
				}
				e, b := store.AuditEntry{
					RunID: "01BENCH", At: now, Actor: "sync", Action: "create", Username: p.Username,
				}.AppendChanged(buf, nil, p)
				buf = b
				if err := tx.Audit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkInsert100k measures the store's part of a first sync of 100,000
// people: 100,000 Inserts and Audits in transactions of 2000 profiles.
// cpu-s/op is the CPU time of the whole process (GC included), which a
// busy machine does not stretch as it does wall time.
func BenchmarkInsert100k(b *testing.B) {
	const n, batch = 100_000, 2000
	ctx := b.Context() // cancellable, as a real run's is
	dir := b.TempDir()
	want := benchProfiles(n)
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ps := slices.Clone(want)
		s, err := Open(ctx, filepath.Join(dir, fmt.Sprintf("bench%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cpuTime()
		if err := firstSync(ctx, s, ps, batch); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkProfiles100k measures reading 100,000 profiles, as every run
// does before it plans.
func BenchmarkProfiles100k(b *testing.B) {
	const n = 100_000
	ctx := b.Context()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := firstSync(ctx, s, benchProfiles(n), 5000); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ps, err := s.Profiles(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ps) != n {
			b.Fatalf("%d profiles, want %d", len(ps), n)
		}
	}
	b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
}
