package ldap

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

// syncer runs seatsync's reconcile.Runner with this connector and a real
// SQLite store: the code path `seatsync sync` takes.
type syncer struct {
	t      *testing.T
	runner *reconcile.Runner
	store  *sqlite.Store
}

func newSyncer(t *testing.T, src testConfig) *syncer {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &config.Config{Version: 1, Sources: []config.Source{src.source()}}
	cfg.Licensing.Pools = []config.Pool{
		{Name: "primary", Limit: config.Limit{N: 100}, Areas: []string{"primary"}},
		{Name: "extranet", Limit: config.Limit{N: 100}, Areas: []string{"partners"}},
	}
	cfg.Licensing.OnOverage = "keep"
	cfg.Safety.MaxDeprovision = config.Threshold{Value: 100, Set: true}
	return &syncer{t: t, store: st, runner: &reconcile.Runner{Config: cfg, Store: st,
		Connectors: connector.Registry{"ldap": Kind}, Log: zap.NewNop()}}
}

// sync runs one sync and returns its report.
func (s *syncer) sync() *reconcile.Report {
	s.t.Helper()
	rep, err := s.runner.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
	if err != nil {
		s.t.Fatalf("sync: %v", err)
	}
	return rep
}

// profiles returns the stored profiles by username.
func (s *syncer) profiles() map[string]model.Profile {
	s.t.Helper()
	ps, err := s.store.Profiles(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]model.Profile{}
	for _, p := range ps {
		out[p.Username] = p
	}
	return out
}

// expect checks a profile's state, reason and area.
func (s *syncer) expect(username string, state model.State, reason model.Reason, area string) model.Profile {
	s.t.Helper()
	p, ok := s.profiles()[username]
	if !ok {
		s.t.Fatalf("no profile %s", username)
	}
	if p.State != state || p.BlockReason != reason || p.Area != area {
		s.t.Fatalf("%s: %s/%s in %s, want %s/%s in %s", username, p.State, p.BlockReason, p.Area, state, reason, area)
	}
	return p
}

func summary(rep *reconcile.Report) string {
	var b strings.Builder
	for _, c := range rep.Changes {
		b.WriteString(string(c.Action) + " " + c.Username + " " + string(c.State) + " " + c.Reason + "; ")
	}
	return b.String()
}

// TestOpenLDAPReconcile: created, disabled, re-enabled, renamed and moved
// out of base_dn, through the runner and a SQLite store.
func TestOpenLDAPReconcile(t *testing.T) {
	s := needSlapd(t)
	ou := unique("rec")
	root := "ou=" + ou + "," + s.BaseDN
	people := "ou=people," + root
	gone := "ou=gone," + root
	groups := "ou=groups," + root
	s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(gone)+ldifOU(groups)+
		ldifPerson(people, "alice")+ldifPerson(people, "bob")+ldifPerson(people, "carol")+
		ldifGroup("cn=partners,"+groups, "uid=carol,"+people))
	src := slapdSource(s, "people,ou="+ou)
	src.GroupBaseDN = groups
	src.DisabledFilter = "(pwdAccountLockedTime=*)"
	src.AreaRules = []config.AreaRule{{Group: "CN=Partners," + groups, Area: "partners"}}
	sy := newSyncer(t, src)

	if rep := sy.sync(); rep.Summary.Create != 3 {
		t.Fatalf("first sync: %s", summary(rep))
	}
	alice := sy.expect("alice", model.Active, model.ReasonNone, "primary")
	sy.expect("carol", model.Active, model.ReasonNone, "partners")

	s.Modify(t, "dn: uid=bob,"+people+"\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
	sy.sync()
	sy.expect("bob", model.Blocked, model.ReasonSourceDisabled, "primary")

	s.Modify(t, "dn: uid=bob,"+people+"\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
	sy.sync()
	sy.expect("bob", model.Active, model.ReasonNone, "primary")

	s.Modify(t, "dn: uid=alice,"+people+"\nchangetype: modrdn\nnewrdn: uid=alicia\ndeleteoldrdn: 1\n")
	rep := sy.sync()
	if rep.Summary.Create != 0 || rep.Summary.Delete != 0 {
		t.Fatalf("rename: %s", summary(rep))
	}
	if p := sy.expect("alicia", model.Active, model.ReasonNone, "primary"); p.ExternalID != alice.ExternalID {
		t.Errorf("renamed profile has external id %s, want %s", p.ExternalID, alice.ExternalID)
	}

	s.Modify(t, "dn: uid=carol,"+people+"\nchangetype: modrdn\nnewrdn: uid=carol\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	sy.sync()
	sy.expect("carol", model.Blocked, model.ReasonLeftSource, "partners")
	if rep := sy.sync(); rep.Summary.Total() != 0 {
		t.Errorf("a second sync changed something: %s", summary(rep))
	}
}
