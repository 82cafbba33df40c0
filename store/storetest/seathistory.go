package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/store"
)

// testSeatHistory checks SaveSeats and SeatHistory: rows read back as
// written, from another handle, oldest first; since selects; a run saved
// again replaces its rows; Prune removes old rows with the runs.
func testSeatHistory(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	if rows, err := s.SeatHistory(ctx, time.Time{}); err != nil || rows == nil || len(rows) != 0 {
		t.Fatalf("SeatHistory of an empty store = %#v, %v; want an empty, non-nil slice", rows, err)
	}
	pool := func(name string, limit, used, queued int) store.SeatRow {
		return store.SeatRow{Kind: store.SeatKindPool, Name: name, Limit: limit, Used: used, Queued: queued,
			Remaining: max(limit-used, 0), Overage: max(used-limit, 0)}
	}
	free := store.SeatRow{Kind: store.SeatKindPool, Name: "partners", Unlimited: true, Used: 7}
	saves := []struct {
		run  string
		at   time.Time
		rows []store.SeatRow
	}{
		{"r1", at(0), []store.SeatRow{pool("primary", 10, 8, 0), free}},
		{"r2", at(24 * time.Hour), []store.SeatRow{pool("primary", 10, 10, 3)}},
		{"r3", at(48 * time.Hour), []store.SeatRow{pool("primary", 12, 13, 1)}},
	}
	for _, sv := range saves {
		if err := s.SaveSeats(ctx, sv.run, sv.at, sv.rows); err != nil {
			t.Fatalf("SaveSeats %s: %v", sv.run, err)
		}
	}
	// Saved again, a run's rows are replaced, not added to.
	if err := s.SaveSeats(ctx, "r3", at(48*time.Hour), []store.SeatRow{pool("primary", 12, 11, 0)}); err != nil {
		t.Fatal(err)
	}
	stamp := func(run string, when time.Time, r store.SeatRow) store.SeatRow {
		r.RunID, r.At = run, when
		return r
	}
	want := []store.SeatRow{
		stamp("r1", at(0), free),
		stamp("r1", at(0), pool("primary", 10, 8, 0)),
		stamp("r2", at(24*time.Hour), pool("primary", 10, 10, 3)),
		stamp("r3", at(48*time.Hour), pool("primary", 12, 11, 0)),
	}
	other := handle(t, newHandle)
	got, err := other.SeatHistory(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SeatHistory (-want +got):\n%s", diff)
	}
	for _, r := range got {
		checkUTC(t, "SeatRow.At", r.At)
	}
	got, err = other.SeatHistory(ctx, at(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[2:], got); diff != "" {
		t.Errorf("SeatHistory since the second run (-want +got):\n%s", diff)
	}

	if _, _, err := s.Prune(ctx, at(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err = s.SeatHistory(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[2:], got); diff != "" {
		t.Errorf("SeatHistory after Prune (-want +got):\n%s", diff)
	}
}
