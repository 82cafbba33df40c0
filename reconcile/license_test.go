package reconcile_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

// licSite is an installation whose pools take their limits from a vendor
// licence: a CSV export, a store, a clock, and the vendor's key.
type licSite struct {
	t     *testing.T
	dir   string
	cfg   *config.Config
	r     *reconcile.Runner
	rec   *recorder
	clock time.Time
	key   ed25519.PrivateKey
}

func newLicSite(t *testing.T, people int, onOverage string) *licSite {
	t.Helper()
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), people)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "vendor.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	cfg := benchConfig(dir)
	cfg.Licensing.LicenseFile = filepath.Join(dir, "license.yaml")
	cfg.Licensing.PublicKeyFile = filepath.Join(dir, "vendor.pub")
	cfg.Licensing.Pools = []config.Pool{{Name: "primary", LimitFrom: "MAX_USERS", Areas: []string{"primary"}}}
	cfg.Licensing.OnOverage = onOverage
	s := &licSite{t: t, dir: dir, cfg: cfg, rec: &recorder{}, key: key, clock: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s.r = &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"csv": csvsource.Kind},
		Notifier: s.rec, Log: zap.NewNop(), Now: func() time.Time { return s.clock }}
	return s
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// licence is a licence file's text.
func licence(limit, expires string) string {
	return fmt.Sprintf("registered_to: Example Ltd\nissued: 2026-01-15\nexpires: %s\nlimits:\n  MAX_USERS: %s\n  CRM_ALLOWED: yes\n", expires, limit)
}

// install writes a licence and its signature, as the vendor sent them.
func (s *licSite) install(text string) {
	s.t.Helper()
	writeTestFile(s.t, s.cfg.Licensing.LicenseFile, []byte(text))
	writeTestFile(s.t, s.cfg.Licensing.LicenseFile+".sig", licensing.Sign([]byte(text), s.key))
}

func (s *licSite) sync() *reconcile.Report {
	s.t.Helper()
	s.rec.events = nil
	rep, err := s.r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
	if err != nil {
		s.t.Fatalf("sync: %v", err)
	}
	return rep
}

// states counts the store's profiles by state and block reason.
func (s *licSite) states() map[string]int {
	s.t.Helper()
	ps, err := s.r.Store.Profiles(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range ps {
		out[string(p.State)+"/"+string(p.BlockReason)]++
	}
	return out
}

func (s *licSite) kinds() []string {
	var out []string
	for _, e := range s.rec.events {
		k := string(e.Kind)
		if e.Days > 0 {
			k += fmt.Sprintf("/%dd", e.Days)
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *licSite) wantStates(want map[string]int) {
	s.t.Helper()
	if got := s.states(); fmt.Sprint(got) != fmt.Sprint(want) {
		s.t.Errorf("profiles %v, want %v", got, want)
	}
}

// Crossing the expiry date between two runs: nobody new gets a seat, the
// people already seated stay active (not even block_newest evicts them),
// and a renewed licence frees the queue at the next run.
func TestLicenseExpiryAndRenewal(t *testing.T) {
	s := newLicSite(t, 5, licensing.OverageBlockNewest)
	s.install(licence("3", "2027-01-15"))
	s.clock = time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	rep := s.sync()
	s.wantStates(map[string]int{"active/": 3, "blocked/license": 2})
	if l := rep.License; l == nil || l.State != reconcile.LicenseValid || *l.DaysLeft != 6 || l.Expires != "2027-01-15" {
		t.Errorf("licence in the report: %+v", l)
	}
	if got := s.kinds(); !slices.Contains(got, "license_expiring/7d") || slices.Contains(got, "license_expired") {
		t.Errorf("events before expiry: %v", got)
	}

	// Two more people, and the licence lapses.
	writePeople(t, filepath.Join(s.dir, "people.csv"), 7)
	s.clock = time.Date(2027, 1, 16, 0, 0, 1, 0, time.UTC)
	rep = s.sync()
	s.wantStates(map[string]int{"active/": 3, "blocked/license": 4})
	if l := rep.License; l.State != reconcile.LicenseExpired || fmt.Sprint(l.FrozenPools) != "[primary]" {
		t.Errorf("licence after expiry: %+v", l)
	}
	p := rep.Pools[0]
	if !p.Frozen || p.Limit != 3 || p.Overage != 0 || p.UsedAfter != 3 || p.QueuedAfter != 4 || p.RemainingAfter != 0 {
		t.Errorf("pool after expiry: %+v", p)
	}
	for _, ch := range rep.Changes {
		if ch.Action != reconcile.ActionCreate || ch.State != model.Blocked || ch.Reason != string(model.ReasonLicense) {
			t.Errorf("after expiry: %s %s %s %s", ch.Action, ch.Username, ch.State, ch.Reason)
		}
	}
	if got := s.kinds(); !slices.Contains(got, "license_expired") || !slices.Contains(got, "seats_exhausted") || slices.Contains(got, "overage") {
		t.Errorf("events after expiry: %v", got)
	}
	if !strings.Contains(rep.License.Text(), "EXPIRED on 2027-01-15") {
		t.Errorf("text: %s", rep.License.Text())
	}

	// Renewed: the queue is activated in order.
	s.install(licence("10", "2028-01-15"))
	rep = s.sync()
	s.wantStates(map[string]int{"active/": 7})
	if rep.Summary.Activate != 4 || rep.License.State != reconcile.LicenseValid || rep.Pools[0].Frozen {
		t.Errorf("after renewal: summary %+v, licence %+v, pool %+v", rep.Summary, rep.License, rep.Pools[0])
	}
	if got := s.kinds(); !slices.Contains(got, "seats_available") || slices.Contains(got, "license_expired") {
		t.Errorf("events after renewal: %v", got)
	}
}

// A tampered, unsigned or wrongly signed licence is refused, and the last
// valid one, remembered in the store, stays in force.
func TestLicenseRefusedKeepsRemembered(t *testing.T) {
	s := newLicSite(t, 4, licensing.OverageKeep)
	good := licence("2", "never")
	s.install(good)
	s.sync()
	s.wantStates(map[string]int{"active/": 2, "blocked/license": 2})

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		bad  func()
		want string
	}{
		{"tampered byte", func() {
			writeTestFile(t, s.cfg.Licensing.LicenseFile, []byte(strings.Replace(good, "MAX_USERS: 2", "MAX_USERS: 9", 1)))
		}, "changed after it was signed"},
		{"unsigned", func() {
			writeTestFile(t, s.cfg.Licensing.LicenseFile, []byte(good))
			os.Remove(s.cfg.Licensing.LicenseFile + ".sig")
		}, "the licence has no signature: " + s.cfg.Licensing.LicenseFile + ".sig does not exist"},
		{"wrong key", func() {
			text := licence("9", "never")
			writeTestFile(t, s.cfg.Licensing.LicenseFile, []byte(text))
			writeTestFile(t, s.cfg.Licensing.LicenseFile+".sig", licensing.Sign([]byte(text), other))
		}, "signed with another key"},
		{"gone", func() { os.Remove(s.cfg.Licensing.LicenseFile) }, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.bad()
			rep := s.sync()
			l := rep.License
			if l.State != reconcile.LicenseValid || !l.Remembered || !strings.Contains(l.Refused, tt.want) {
				t.Errorf("licence: %+v; want the remembered one in force and %q refused", l, tt.want)
			}
			if rep.Pools[0].Limit != 2 || rep.Pools[0].Frozen {
				t.Errorf("pool: %+v, want the remembered limit 2", rep.Pools[0])
			}
			s.wantStates(map[string]int{"active/": 2, "blocked/license": 2})
			if got := s.kinds(); !slices.Contains(got, "license_invalid") {
				t.Errorf("events: %v", got)
			}
			var msg string
			for _, e := range s.rec.events {
				if e.Kind == notify.LicenseInvalid {
					msg = e.Message
				}
			}
			if !strings.Contains(msg, "The remembered licence (issued 2026-01-15, expires never) stays in force") {
				t.Errorf("license_invalid says %q", msg)
			}
			if txt := l.Text(); !strings.Contains(txt, "licence REFUSED: ") || !strings.Contains(txt, "the remembered licence (issued 2026-01-15, expires never) stays in force") {
				t.Errorf("report text: %s", txt)
			}
		})
	}

	// Put right, the file is in force again and the event stops.
	s.install(licence("3", "never"))
	rep := s.sync()
	if rep.License.Remembered || rep.License.Refused != "" || rep.Pools[0].Limit != 3 {
		t.Errorf("mended: %+v %+v", rep.License, rep.Pools[0])
	}
	s.wantStates(map[string]int{"active/": 3, "blocked/license": 1})
}

// With no valid licence ever seen, pools with limit_from give no seat:
// everyone is queued, and the report and notification say why.
func TestLicenseNeverValid(t *testing.T) {
	s := newLicSite(t, 3, licensing.OverageBlockNewest)
	writeTestFile(t, s.cfg.Licensing.LicenseFile, []byte(licence("5", "never"))) // no .sig
	rep := s.sync()
	s.wantStates(map[string]int{"blocked/license": 3})
	if l := rep.License; l.State != reconcile.LicenseNone || !strings.Contains(l.Text(), "no valid licence has ever been seen, so pools primary (limit_from) give no seats until one is installed") {
		t.Errorf("licence: %+v\n%s", l, l.Text())
	}
	if p := rep.Pools[0]; !p.Frozen || p.Limit != 0 {
		t.Errorf("pool: %+v", p)
	}
	if got := s.kinds(); !slices.Contains(got, "license_invalid") {
		t.Errorf("events: %v", got)
	}
}

// An unlimited limit gives everyone a seat.
func TestLicenseUnlimited(t *testing.T) {
	s := newLicSite(t, 40, licensing.OverageKeep)
	s.install(licence("unlimited", "2030-01-01"))
	rep := s.sync()
	s.wantStates(map[string]int{"active/": 40})
	if p := rep.Pools[0]; !p.Unlimited || p.LimitFrom != "MAX_USERS" {
		t.Errorf("pool: %+v", p)
	}
}

// A limit_from key the licence lacks fails the run, naming the key and
// those the licence has; nothing is written.
func TestLicenseMissingKey(t *testing.T) {
	s := newLicSite(t, 3, licensing.OverageKeep)
	s.cfg.Licensing.Pools[0].LimitFrom = "MAX_SEATS"
	s.install(licence("5", "never"))
	_, err := s.r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
	want := "licence: licensing.pools[0].limit_from: the licence (issued 2026-01-15) has no limit MAX_SEATS (its limits: MAX_USERS); pool primary gives no new seats"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	s.wantStates(map[string]int{})
}

// A plan reads the licence but remembers nothing: a later refused file
// has nothing to fall back on.
func TestLicensePlanRemembersNothing(t *testing.T) {
	s := newLicSite(t, 2, licensing.OverageKeep)
	s.install(licence("5", "never"))
	if _, err := s.r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModePlan}); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.r.Store.Value(context.Background(), "license"); err != nil || v != "" {
		t.Errorf("a plan remembered %q, %v", v, err)
	}
}

// licenceServer serves a licence and its signature over TLS, counting
// requests; what it serves can be changed.
type licenceServer struct {
	*httptest.Server
	mu        sync.Mutex
	data, sig []byte
}

func (l *licenceServer) set(data, sig []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data, l.sig = data, sig
}

func newLicenceServer(t *testing.T) *licenceServer {
	l := &licenceServer{}
	l.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch r.URL.Path {
		case "/acme/license.yaml":
			w.Write(l.data)
		case "/acme/license.yaml.sig":
			w.Write(l.sig)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(l.Close)
	return l
}

// license_url: a licence fetched over TLS (its CA trusted through
// license_tls.ca_file) that verifies is written to license_file, 0600; an
// untrusted certificate, a failed fetch or a fetched file that does not
// verify keep the licence in force, and say so.
func TestLicenseURL(t *testing.T) {
	s := newLicSite(t, 6, licensing.OverageKeep)
	srv := newLicenceServer(t)
	text := licence("4", "never")
	srv.set([]byte(text), licensing.Sign([]byte(text), s.key))
	ca := filepath.Join(s.dir, "ca.pem")
	writeTestFile(t, ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	s.cfg.Licensing.LicenseURL = srv.URL + "/acme/license.yaml"
	s.cfg.Licensing.LicenseTLS.CAFile = ca

	rep := s.sync()
	if l := rep.License; l.State != reconcile.LicenseValid || l.From != s.cfg.Licensing.LicenseURL || l.FetchFailed != "" || l.Refused != "" {
		t.Fatalf("licence: %+v", l)
	}
	s.wantStates(map[string]int{"active/": 4, "blocked/license": 2})
	fi, err := os.Stat(s.cfg.Licensing.LicenseFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("license_file: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(s.cfg.Licensing.LicenseFile); string(got) != text {
		t.Errorf("license_file holds %q", got)
	}

	// A fetched file that does not verify: refused, the file on disk stays.
	srv.set([]byte(licence("40", "never")), licensing.Sign([]byte(text), s.key))
	rep = s.sync()
	if l := rep.License; l.State != reconcile.LicenseValid || !strings.Contains(l.Refused, "the licence from "+s.cfg.Licensing.LicenseURL+" was refused") ||
		l.From != s.cfg.Licensing.LicenseFile || rep.Pools[0].Limit != 4 {
		t.Errorf("tampered download: %+v, pool %+v", l, rep.Pools[0])
	}
	if got, _ := os.ReadFile(s.cfg.Licensing.LicenseFile); string(got) != text {
		t.Errorf("a refused download was written: %q", got)
	}

	// An untrusted certificate (no ca_file): the fetch fails, the file on
	// disk is in force.
	renewed := licence("6", "never")
	srv.set([]byte(renewed), licensing.Sign([]byte(renewed), s.key))
	s.cfg.Licensing.LicenseTLS.CAFile = ""
	rep = s.sync()
	if l := rep.License; l.State != reconcile.LicenseValid || !strings.Contains(l.FetchFailed, "certificate") || rep.Pools[0].Limit != 4 {
		t.Errorf("untrusted: %+v, pool %+v", l, rep.Pools[0])
	}
	if !strings.Contains(rep.License.Text(), "licence fetch failed: ") {
		t.Errorf("text: %s", rep.License.Text())
	}

	// Trusted again: the renewed licence frees the queue.
	s.cfg.Licensing.LicenseTLS.CAFile = ca
	rep = s.sync()
	if rep.Pools[0].Limit != 6 || rep.Summary.Activate != 2 {
		t.Errorf("renewed: pool %+v, summary %+v", rep.Pools[0], rep.Summary)
	}
	if got, _ := os.ReadFile(s.cfg.Licensing.LicenseFile + ".sig"); string(got) != string(licensing.Sign([]byte(renewed), s.key)) {
		t.Errorf("license_file.sig holds %q", got)
	}
}

// A remembered licence is checked again with the public key: after the key
// changed, one it does not verify is no longer in force.
func TestLicenseRememberedCheckedWithKey(t *testing.T) {
	s := newLicSite(t, 2, licensing.OverageKeep)
	s.install(licence("5", "never"))
	s.sync()
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(other.Public())
	writeTestFile(t, s.cfg.Licensing.PublicKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	rep := s.sync()
	if l := rep.License; l.State != reconcile.LicenseNone || l.Remembered || !strings.Contains(l.Refused, "signed with another key") {
		t.Errorf("licence after the key changed: %+v", l)
	}
	s.wantStates(map[string]int{"active/": 2}) // frozen: nobody blocked
}
