package target

import (
	"context"
	"time"

	"github.com/seatsync/seatsync/store"
)

// Status is one target's health, as `targets status` and GET
// /api/v1/targets give it.
type Status struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Linked is how many profiles have a user in the application.
	Linked  int `json:"linked"`
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
	// Failures are the pushes the application refused for one user; they
	// are sent again when the profile changes, or by `targets push`.
	Failures []Failure `json:"failures"`
	// Retrying are pending pushes that failed for a passing reason (the
	// application down, a 5xx, a timeout); the next run sends them again.
	Retrying []Retrying `json:"retrying"`
}

// Retrying is one pending push that has failed before.
type Retrying struct {
	Username string    `json:"username"`
	Attempts int       `json:"attempts"`
	Status   int       `json:"status"`
	Error    string    `json:"error"`
	Since    time.Time `json:"since"`
}

// StatusOf reads a target's status from the store.
func StatusOf(ctx context.Context, st store.Store, cfg Config) (Status, error) {
	s := Status{Name: cfg.Name, Type: cfg.Type, Failures: []Failure{}, Retrying: []Retrying{}}
	pending, err := st.Pending(ctx, cfg.Name)
	if err != nil {
		return s, err
	}
	links, err := st.Links(ctx, cfg.Name)
	if err != nil {
		return s, err
	}
	for _, l := range links {
		if !l.Gone {
			s.Linked++
		}
	}
	for _, p := range pending {
		x := push{p: p, link: p.Link}
		switch {
		case p.Failed:
			s.Failed++
			s.Failures = append(s.Failures, Failure{Username: x.username(), Status: p.LastStatus, Error: p.LastError})
		default:
			s.Pending++
			if p.Attempts > 0 {
				s.Retrying = append(s.Retrying, Retrying{Username: x.username(), Attempts: p.Attempts, Status: p.LastStatus,
					Error: p.LastError, Since: p.MarkedAt})
			}
		}
	}
	return s, nil
}
