package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
)

// A skipped entry is never a leaver: these are the rules of what one means.

func withSkips(p Pull, skips ...Skipped) Pull {
	p.Skipped = skips
	return p
}

func TestSkippedEntryWithItsExternalIDLeavesTheProfileAlone(t *testing.T) {
	queuedAt := t0.Add(time.Hour)
	profiles := []model.Profile{
		active("1", "alice", "primary"),
		active("2", "bob", "primary"),
		blocked("3", "carol", "primary", model.ReasonLicense, queuedAt),
		blocked("4", "dave", "primary", model.ReasonLicense, queuedAt.Add(time.Minute)),
	}
	// Bob's row could not be read (a connector skip), carol's could not be
	// mapped (a bad email: a planner skip). alice left the source, which
	// frees a seat; carol is first in the queue but her row is unusable,
	// so the seat goes to dave and carol keeps her place.
	pull := withSkips(hr(
		person("3", "carol", func(i *model.Identity) { i.Email = "not-an-address" }),
		person("4", "dave"),
	), Skipped{Source: "hr", ExternalID: "2", Where: "line 3", Reason: `invalid enabled value "1.0"`})
	plan := planFor(profiles, pools(2, 10), pull)

	want := []brief{
		{ActionActivate, "dave", model.Active, ReasonSeatFreed, 0},
		{ActionBlock, "alice", model.Blocked, "left_source", 0},
	}
	if diff := cmp.Diff(want, briefs(plan)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if plan.Sources[0].LeavesSuspended != "" {
		t.Errorf("leaves suspended: %q; every skip named its external id", plan.Sources[0].LeavesSuspended)
	}
	if plan.Summary.Skipped != 2 {
		t.Errorf("skipped = %d, want 2", plan.Summary.Skipped)
	}
}

func TestSkippedEntryWithoutExternalIDSuspendsLeaves(t *testing.T) {
	expiredAt := now.Add(-1000 * time.Hour)
	profiles := []model.Profile{
		active("1", "alice", "primary"),
		active("2", "bob", "primary"),
		blocked("3", "carol", "primary", model.ReasonLeftSource, expiredAt),
		blocked("4", "dave", "primary", model.ReasonLicense, t0),
	}
	for _, tc := range []struct {
		name     string
		onLeave  string
		pull     Pull
		wantWhy  string
		wantMore []brief
	}{
		{
			name:    "a connector skip without an external id",
			onLeave: LeaveBlock,
			pull: withSkips(hr(person("1", "alice")),
				Skipped{Source: "hr", Where: "line 7", Reason: "has 5 fields, the header has 4"}),
			wantWhy: "line 7",
		},
		{
			name:    "an identity with no external id, with on_leave: delete",
			onLeave: LeaveDelete,
			pull:    hr(person("1", "alice"), person("", "ghost")),
			wantWhy: "no external id",
		},
		{
			name:    "an external id over max_field_bytes",
			onLeave: LeaveBlock,
			pull: func() Pull {
				p := hr(person("1", "alice"), person(strings.Repeat("x", 5000), "huge"))
				p.Rules.MaxFieldBytes = 4096
				return p
			}(),
			wantWhy: "external_id is 5000 bytes, over the limit of 4096 (max_field_bytes)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pull.Rules.OnLeave = tc.onLeave
			tc.pull.Rules.DeleteAfter = 720 * time.Hour
			plan := planFor(profiles, pools(10, 10), tc.pull)
			// bob is not reported, carol's delete_after has passed, dave
			// is queued: none of it may be acted on, since any of them may
			// be the entry that could not be read.
			if len(plan.Changes) != 0 {
				t.Errorf("changes: %+v, want none", briefs(plan))
			}
			why := plan.Sources[0].LeavesSuspended
			if !strings.Contains(why, tc.wantWhy) || !strings.Contains(why, "nobody of source hr is blocked or deleted") {
				t.Errorf("leaves_suspended = %q, want it to name %q", why, tc.wantWhy)
			}
			if plan.Guard.Deprovisions != 0 {
				t.Errorf("guard counts %d deprovisions", plan.Guard.Deprovisions)
			}
		})
	}
}

func TestOversizedFieldSkipsTheEntryAndKeepsItsProfile(t *testing.T) {
	profiles := []model.Profile{active("1", "alice", "primary"), active("2", "bob", "primary")}
	pull := hr(person("1", "alice", func(i *model.Identity) {
		i.Attributes = map[string]string{"notes": strings.Repeat("n", 10000), "b": "ok"}
	}), person("2", "bob", groups(strings.Repeat("g", 4097))))
	pull.Rules.MaxFieldBytes = 4096
	plan := planFor(profiles, pools(10, 10), pull)
	if len(plan.Changes) != 0 {
		t.Errorf("changes: %+v, want none", briefs(plan))
	}
	var reasons []string
	for _, s := range plan.Skipped {
		reasons = append(reasons, s.ExternalID+": "+s.Reason)
	}
	want := []string{
		`1: attribute "notes" is 10000 bytes, over the limit of 4096 (max_field_bytes)`,
		`2: a group is 4097 bytes, over the limit of 4096 (max_field_bytes)`,
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
}
