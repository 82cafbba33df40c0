package licensing

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
)

func TestUsedPercent(t *testing.T) {
	for _, c := range []struct{ used, limit, want int }{
		{0, 10, 0}, {9, 10, 90}, {2, 3, 66}, {10, 10, 100}, {12, 10, 120}, {0, 0, 0}, {3, 0, 0},
	} {
		if got := UsedPercent(c.used, c.limit); got != c.want {
			t.Errorf("UsedPercent(%d, %d) = %d, want %d", c.used, c.limit, got, c.want)
		}
	}
}

// The queue names each person as the status page shows them: display
// name and e-mail with the username.
func TestQueueNamesPeople(t *testing.T) {
	pol := NewPolicy([]Pool{{Name: "primary", Limit: 1, Areas: []string{"primary"}}}, []string{"admin"}, nil, "")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := pol.Queue([]model.Profile{
		{Username: "alice", Area: "primary", State: model.Active},
		{Username: "bob", DisplayName: "Bob B.", Email: "bob@example.com", Area: "primary", State: model.Blocked,
			BlockReason: model.ReasonLicense, QueuedAt: at},
		{Username: "admin", Area: "primary", State: model.Blocked, BlockReason: model.ReasonLicense},
	})
	want := []QueueEntry{{Pool: "primary", Position: 1, Username: "bob", DisplayName: "Bob B.", Email: "bob@example.com", Area: "primary", QueuedAt: at}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Queue (-want +got):\n%s", diff)
	}
}
