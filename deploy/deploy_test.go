// Package deploy holds the packaging: the systemd unit, the Kubernetes
// base, the alert rules and the Grafana dashboard. Its test checks that
// every metric they use is one seatsync exports.
package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/server"
	"github.com/seatsync/seatsync/target"
)

// exported returns the metric names the server's registry exports once a
// pool and a schedule are set and a run with a target observed.
func exported(t *testing.T) []string {
	m := server.NewMetrics()
	m.SetPools([]licensing.Status{{Name: "primary", Limit: 5}})
	m.SetSchedules(map[string]time.Duration{"hr": 15 * time.Minute})
	now := time.Now()
	m.ObserveRun(&reconcile.Report{Result: reconcile.ResultOK, StartedAt: now, FinishedAt: now.Add(time.Second),
		Sources: []reconcile.SourceResult{{Name: "hr", Identities: 3, Full: true}},
		Targets: []target.Result{{Name: "intranet", Type: "scim", Sent: 2}}})
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	return names
}

var metricName = regexp.MustCompile(`seatsync_[a-z_]+`)

func used(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range metricName.FindAllString(string(b), -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			n = strings.TrimSuffix(n, suffix)
		}
		out = append(out, n)
	}
	return out
}

func TestDashboardsAndAlertsUseExportedMetrics(t *testing.T) {
	have := exported(t)
	for _, path := range []string{"prometheus/alerts.yaml", "grafana/seatsync-dashboard.json"} {
		names := used(t, path)
		if len(names) == 0 {
			t.Errorf("%s uses no seatsync metric", path)
		}
		for _, n := range names {
			if !slices.Contains(have, n) {
				t.Errorf("%s uses %s, which seatsync does not export (it exports %v)", path, n, have)
			}
		}
	}
}

func TestAlertRulesParse(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %+v lacks an alert name, expression, summary or severity", r)
			}
		}
	}
	if n == 0 {
		t.Error("no alert rules")
	}
}
