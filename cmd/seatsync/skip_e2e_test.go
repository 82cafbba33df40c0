package main_test

import (
	"fmt"
	"strings"
	"testing"
)

// A row that cannot be read must never cost anyone their seat.

// staff returns n export rows E1..En, people u0001..; mod may change a row.
func staff(n int, mod func(i int, r string) string) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("E%d", i+1), fmt.Sprintf("u%04d", i+1))
		if mod != nil {
			rows[i] = mod(i, rows[i])
		}
	}
	return rows
}

func TestUnreadableRowsAreNotLeavers(t *testing.T) {
	// 1,600 seats for 1,650 people: 50 wait in the licence queue.
	s := newSite(t, siteOptions{primaryLimit: "1600", maxDeprov: "100%"}, staff(1650, nil)...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.profiles()

	// 1,500 of them now read `1.0` in the active column: their rows are
	// skipped, with their external ids, so their profiles stay as they are
	// and no seat goes to the queue.
	s.people(staff(1650, func(i int, r string) string {
		if i < 1500 {
			return strings.TrimSuffix(r, ";yes") + ";1.0"
		}
		return r
	})...)
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if rep.Summary["skipped"] != 1500 || len(rep.Changes) != 0 {
		t.Fatalf("summary %v, %d changes; want 1500 skipped and no change", rep.Summary, len(rep.Changes))
	}
	if d := diffProfiles(before, s.profiles()); d != "" {
		t.Fatalf("skipped rows changed profiles:\n%s", d)
	}

	// One row with an extra field and one with a stray quote: still nobody
	// leaves.
	s.people(staff(1650, func(i int, r string) string {
		switch i {
		case 10:
			return r + ";extra"
		case 20:
			return strings.Replace(r, "Sales", `Sa"les`, 1)
		}
		return r
	})...)
	rep = decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if rep.Summary["skipped"] != 2 || len(rep.Changes) != 0 {
		t.Fatalf("summary %v, changes %+v; want 2 skipped and no change", rep.Summary, rep.Changes)
	}
	if d := diffProfiles(before, s.profiles()); d != "" {
		t.Fatalf("unreadable rows changed profiles:\n%s", d)
	}

	// The file fixed: nothing to do.
	s.people(staff(1650, nil)...)
	s.must(exitOK, "plan", "--check", "-c", s.config)
}

func TestRowWithoutExternalIDSuspendsLeaves(t *testing.T) {
	s := newSite(t, siteOptions{maxDeprov: "100%"}, fivePeople()...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.profiles()

	// erin left, but a row has no employee id: it may be erin's, so nobody
	// is blocked for leaving, and the report says why.
	rows := fivePeople()[:4]
	rows = append(rows, strings.Replace(row("X", "erin2"), "X;", ";", 1))
	s.people(rows...)
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	if !strings.Contains(r.stdout, `"leaves_suspended":`) {
		t.Fatalf("the report does not say leaves are suspended:\n%s", r)
	}
	if d := diffProfiles(before, s.profiles()); d != "" {
		t.Fatalf("profiles changed:\n%s", d)
	}
	text := s.must(exitOK, "plan", "--full", "-c", s.config) // the file is unchanged since the sync
	if !strings.Contains(text.stdout, "leavers not handled: the entry at line 6 was skipped") {
		t.Errorf("the text report does not say why leavers are not handled:\n%s", text)
	}

	// The row fixed: erin's leaving is acted on.
	s.people(fivePeople()[:4]...)
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if action, state, reason, _ := rep.change(t, "erin"); action != "block" || state != "blocked" || reason != "left_source" {
		t.Errorf("erin: %s %s %s, want block blocked left_source", action, state, reason)
	}
}
