package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// productSite is a site with one product licence, crm, for team Crm.
func productSite(t *testing.T, limit string, people ...string) *site {
	t.Helper()
	s := newSite(t, siteOptions{primaryLimit: "10"}, people...)
	cfg := strings.Replace(s.read("seatsync.yaml"), "  on_overage: keep\n", `  on_overage: keep
  products:
    - name: crm
      limit: `+limit+`
      grant:
        - group: Crm
`, 1)
	s.write("seatsync.yaml", cfg)
	return s
}

type productReport struct {
	Summary  map[string]int `json:"summary"`
	Products []struct {
		Name        string `json:"name"`
		Limit       int    `json:"limit"`
		Unlimited   bool   `json:"unlimited"`
		UsedAfter   int    `json:"used_after"`
		QueuedAfter int    `json:"queued_after"`
	} `json:"products"`
	Changes []struct {
		Action        string `json:"action"`
		Product       string `json:"product"`
		Username      string `json:"username"`
		Reason        string `json:"reason"`
		QueuePosition int    `json:"queue_position"`
	} `json:"changes"`
}

func decodeProductReport(t *testing.T, r result) productReport {
	t.Helper()
	var rep productReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("the json report does not decode: %v\n%s", err, r)
	}
	return rep
}

func (rep productReport) grants() []string {
	var out []string
	for _, c := range rep.Changes {
		if c.Product != "" {
			out = append(out, c.Action+" "+c.Product+" "+c.Username+" "+c.Reason)
		}
	}
	return out
}

// TestProductGrants: a sync grants product licences by rule and queues
// the rest; seats and profiles list show them; an admin grants and
// recalls by hand, a grant with no licence free or to a blocked profile
// fails for that user alone, and a manual grant outlives the next sync.
func TestProductGrants(t *testing.T) {
	s := productSite(t, "2", row("E1", "alice", "teams=Crm"), row("E2", "bob", "teams=Staff|Crm"), row("E3", "carol", "teams=Crm"),
		row("E4", "dave"), row("E5", "erin"))
	rep := decodeProductReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	want := []string{"grant crm alice rule", "grant crm bob rule", "grant crm carol queued"}
	if got := rep.grants(); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("first sync's grants: %q, want %q", got, want)
	}
	if len(rep.Products) != 1 || rep.Products[0].UsedAfter != 2 || rep.Products[0].QueuedAfter != 1 || rep.Summary["grant"] != 3 {
		t.Errorf("report products %+v, summary %v", rep.Products, rep.Summary)
	}

	if r := s.must(exitOK, "seats", "-c", s.config); !strings.Contains(r.stdout, "product crm: issued 2 of 2, 1 queued") {
		t.Errorf("seats text does not say the product's licences:\n%s", r.stdout)
	}
	r := s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	var seats struct {
		Products []struct {
			Name   string `json:"name"`
			Limit  int    `json:"limit"`
			Issued int    `json:"issued"`
			Queued int    `json:"queued"`
		} `json:"products"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &seats); err != nil || len(seats.Products) != 1 || seats.Products[0].Issued != 2 || seats.Products[0].Queued != 1 {
		t.Errorf("seats json: %v\n%s", err, r.stdout)
	}

	r = s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "csv", "--fields", "username,products")
	if !strings.Contains(r.stdout, "alice,crm\n") || !strings.Contains(r.stdout, "carol,\n") {
		t.Errorf("profiles list csv:\n%s", r.stdout)
	}
	r = s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "json", "--fields", "username,products")
	var rows []struct {
		Username string   `json:"username"`
		Products []string `json:"products"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("profiles list json: %v\n%s", err, r.stdout)
	}
	for _, row := range rows {
		if held := row.Username == "alice" || row.Username == "bob"; held != (len(row.Products) == 1) || row.Products == nil {
			t.Errorf("profiles list json: %s has %v", row.Username, row.Products)
		}
	}

	// No licence free: dave's grant fails, and says why; the others go on.
	r = s.must(exitFailed, "profiles", "grant", "-c", s.config, "crm", "dave", "bob")
	if !strings.Contains(r.stderr, "no free product licence") || !strings.Contains(r.stderr, "failed for 1 of 2 profiles: dave") {
		t.Errorf("grant with no licence free:\n%s", r)
	}
	if !strings.Contains(r.stdout, "bob: already held crm; now kept as a manual grant") {
		t.Errorf("grant to bob, who holds crm:\n%s", r)
	}
	s.must(exitOK, "profiles", "recall", "-c", s.config, "crm", "alice")
	s.must(exitOK, "profiles", "grant", "-c", s.config, "crm", "dave")
	s.must(exitOK, "profiles", "block", "-c", s.config, "erin")
	r = s.must(exitFailed, "profiles", "grant", "-c", s.config, "crm", "erin")
	if !strings.Contains(r.stderr, "only active profiles hold product licences") {
		t.Errorf("grant to a blocked profile:\n%s", r)
	}
	s.must(exitUsage, "profiles", "grant", "-c", s.config, "bi", "dave")

	// The next sync keeps dave's manual grant (no rule matches him); alice
	// and carol wait, carol first.
	rep = decodeProductReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if got := strings.Join(rep.grants(), "; "); got != "grant crm alice queued" {
		t.Errorf("sync after the manual grant: %q", got)
	}
	r = s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "csv", "--fields", "username,products")
	if !strings.Contains(r.stdout, "dave,crm\n") || !strings.Contains(r.stdout, "alice,\n") {
		t.Errorf("profiles list after the sync:\n%s", r.stdout)
	}
	if r := s.must(exitOK, "seats", "-c", s.config); !strings.Contains(r.stdout, "product crm: issued 2 of 2, 2 queued") {
		t.Errorf("seats:\n%s", r.stdout)
	}
}
