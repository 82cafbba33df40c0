package main_test

// End-to-end tests of incremental sync (SPEC section 15) through the
// binary, against a real slapd (RFC 4533 sync, with and without a syncprov
// session log), a real Samba AD DC (DirSync), the Okta fake and a csv
// export. Every incremental run is checked twice: its report says what the
// read was (incremental, full, the changed identities and delete notices)
// and what it changed, and then `plan --full --check` exits 0: a full pull
// finds nothing left to change, so the incremental result is the full
// result.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/store/sqlite"
)

// neverFull is a full_schedule that does not come round while the tests
// run (unless they run over midnight on New Year's Eve), so that every run
// after the first is incremental unless the test says otherwise; the
// default (02:00 daily) would make a run at 02:00 full. (The loader
// refuses a schedule with no run in the next year.)
const neverFull = `"0 0 1 1 *"`

// incrSource is one entry of the report's sources[], with the fields of
// incremental reads.
type incrSource struct {
	Name                string `json:"name"`
	Type                string `json:"type"`
	Identities          int    `json:"identities"`
	Skipped             int    `json:"skipped"`
	Full                bool   `json:"full"`
	Incremental         bool   `json:"incremental"`
	IncrementalFallback string `json:"incremental_fallback"`
	Deletes             int    `json:"deletes"`
	NoDeletes           bool   `json:"no_deletes"`
}

// sourceReport returns the report's entry for source name, or fails.
func sourceReport(t *testing.T, r result, name string) incrSource {
	t.Helper()
	var rep struct {
		Sources []incrSource `json:"sources"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("the json report does not decode: %v\n%s", err, r)
	}
	for _, s := range rep.Sources {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("the report has no source %s: %+v\n%s", name, rep.Sources, r)
	return incrSource{}
}

// readWant is what a source's read should look like in the report.
type readWant struct {
	full       bool
	fallback   bool // incremental_fallback is set (then full too)
	identities int  // -1: not checked
	deletes    int
	// anyMode: the incremental flag is not checked (a full read the
	// runner chose itself, where the contract does not say).
	anyMode bool
}

func (w readWant) String() string {
	return fmt.Sprintf("incremental, full=%v, fallback=%v, %d identities, %d deletes", w.full, w.fallback, w.identities, w.deletes)
}

// checkRead checks a source's report entry against want.
func checkRead(t *testing.T, what string, got incrSource, want readWant) {
	t.Helper()
	if (!got.Incremental && !want.anyMode) || got.Full != want.full || (got.IncrementalFallback != "") != want.fallback ||
		(want.identities >= 0 && got.Identities != want.identities) || got.Deletes != want.deletes {
		t.Errorf("%s: source %s read %+v, want %s", what, got.Name, got, want)
	}
}

// changeList is the report's changes as "username action" (with the
// block reason for blocks), sorted.
func changeList(rep report) []string {
	var out []string
	for _, c := range rep.Changes {
		s := c.Username + " " + c.Action
		if c.Action == "block" {
			s += " " + c.Reason
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// incrSync runs `sync --format json` (with extra arguments), wants exit 0,
// checks source's read and the changes (want, "username action [reason]"
// in any order), and then that a full plan finds nothing to change.
func (s *site) incrSync(what, source string, want readWant, changes []string, extra ...string) report {
	s.t.Helper()
	r := s.must(exitOK, append([]string{"sync", "-c", s.config, "--format", "json"}, extra...)...)
	checkRead(s.t, what, sourceReport(s.t, r, source), want)
	rep := decodeReport(s.t, r)
	slices.Sort(changes)
	if got := changeList(rep); !slices.Equal(got, changes) {
		s.t.Errorf("%s: changes %q, want %q", what, got, changes)
	}
	s.converged(what)
	return rep
}

// converged checks that a full pull finds nothing left to change.
func (s *site) converged(what string) {
	s.t.Helper()
	if r := s.run("plan", "-c", s.config, "--full", "--check", "--format", "json"); r.code != exitOK {
		var got []string
		if r.code == exitChanges {
			got = changeList(decodeReport(s.t, r))
		}
		s.t.Errorf("%s: plan --full --check exits %d, want 0 (the incremental result is not the full one); a full pull would change %q\n%s",
			what, r.code, got, r.stderr)
	}
}

// store opens the site's SQLite store (no binary may be running).
func (s *site) store() *sqlite.Store {
	s.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "seatsync.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// cursor is the source's cursor as the store keeps it.
func (s *site) cursor(source string) string {
	s.t.Helper()
	st := s.store()
	defer st.Close()
	v, _, err := st.Value(context.Background(), "cursor/"+source)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// setCursor writes the source's cursor into the store, as a damaged or
// restored store would hold it.
func (s *site) setCursor(source, v string) {
	s.t.Helper()
	st := s.store()
	defer st.Close()
	if err := st.SetValue(context.Background(), "cursor/"+source, v); err != nil {
		s.t.Fatal(err)
	}
}

// position is the connector's part of the source's cursor: the runner
// keeps a line of its own (a version, a digest of the source's
// configuration, the last full read), then the position the connector
// gave.
func (s *site) position(source string) string {
	s.t.Helper()
	_, pos, ok := strings.Cut(s.cursor(source), "\n")
	if !ok {
		s.t.Fatalf("cursor/%s is not a line of the runner's and a position: %.80q", source, s.cursor(source))
	}
	return pos
}

// setPosition replaces the connector's part of the source's cursor,
// leaving the runner's line as it was.
func (s *site) setPosition(source, position string) {
	s.t.Helper()
	head, _, ok := strings.Cut(s.cursor(source), "\n")
	if !ok {
		s.t.Fatalf("cursor/%s is not a line of the runner's and a position", source)
	}
	s.setCursor(source, head+"\n"+position)
}

// cursorMoved fails unless the cursor is no longer before.
func (s *site) cursorMoved(what, source, before string) string {
	s.t.Helper()
	now := s.cursor(source)
	if now == before || now == "" {
		s.t.Errorf("%s: the cursor of %s did not move (%.60q)", what, source, now)
	}
	return now
}

// cursorKept fails unless the cursor is still before.
func (s *site) cursorKept(what, source, before string) {
	s.t.Helper()
	if now := s.cursor(source); now != before {
		s.t.Errorf("%s: the cursor of %s moved:\nwas %.80q\nnow %.80q", what, source, before, now)
	}
}

// siteWith writes a site whose configuration is cfg.
func siteWith(t *testing.T, cfg string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "seatsync.yaml")
	s.write("seatsync.yaml", cfg)
	return s
}

// ldapIncrSite is a site with one incremental ldap source "corp"; keys are
// added to the source as they are.
func ldapIncrSite(t *testing.T, maxDeprov int, url, caFile, bindDN, password, baseDN, keys string) *site {
	t.Helper()
	s := siteWith(t, fmt.Sprintf(`version: 1
store: {path: seatsync.db}
licensing:
  pools:
    - {name: primary, limit: 200, areas: [primary]}
    - {name: extranet, limit: 50, areas: [partners]}
safety: {max_deprovision: %d}
sources:
  - name: corp
    type: ldap
    url: [%s]
    tls: {mode: starttls, ca_file: %s}
    bind_dn: %q
    bind_password_file: ldap.password
    base_dn: %q
    incremental: true
    full_schedule: %s
    area: primary
    on_leave: block
%s
log: {level: warn}
`, maxDeprov, url, caFile, bindDN, baseDN, neverFull, keys))
	s.write("ldap.password", password+"\n")
	return s
}

// firstIncrSync is the first sync of an incremental source: a full read
// (no cursor yet) that creates n people and leaves a cursor.
func (s *site) firstIncrSync(source string, n int) string {
	s.t.Helper()
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	checkRead(s.t, "first sync", sourceReport(s.t, r, source), readWant{full: true, identities: n})
	if rep := decodeReport(s.t, r); rep.Summary["create"] != n {
		s.t.Errorf("first sync created %d, want %d: %v", rep.Summary["create"], n, rep.Summary)
	}
	c := s.cursor(source)
	if c == "" {
		s.t.Fatalf("first sync: no cursor/%s in the store", source)
	}
	s.converged("first sync")
	return c
}

// fullFields are the profile fields a sync from scratch must agree on.
const fullFields = "username,email,given_name,family_name,display_name,title,department,groups,area,state,block_reason,exempt,source,external_id"

// profilesOf lists the site's profiles with fields, by username.
func (s *site) profilesOf(fields string) map[string]profile {
	s.t.Helper()
	r := s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "json", "--fields", fields)
	var rows []profile
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		s.t.Fatalf("profiles list --format json does not decode: %v\n%s", err, r)
	}
	out := make(map[string]profile, len(rows))
	for _, p := range rows {
		out[p["username"].(string)] = p
	}
	return out
}

// sameAsFromScratch syncs the site's sources in full into a new store
// (incremental off), and checks that every profile it makes is the one
// the incremental runs made, field by field, and that the incremental
// store's other profiles are those of people who left.
func (s *site) sameAsFromScratch() {
	s.t.Helper()
	cfg := s.read("seatsync.yaml")
	cfg = regexp.MustCompile(`(?m)^ *full_schedule: .*\n`).ReplaceAllString(cfg, "")
	fresh := siteWith(s.t, strings.ReplaceAll(cfg, "incremental: true", "incremental: false"))
	for _, f := range []string{"ldap.password", "okta.token", "people.csv"} {
		if b, err := os.ReadFile(filepath.Join(s.dir, f)); err == nil {
			fresh.write(f, string(b))
		}
	}
	r := fresh.must(exitOK, "sync", "-c", fresh.config, "--format", "json")
	var rep struct {
		Sources []incrSource `json:"sources"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		s.t.Fatal(err)
	}
	for _, src := range rep.Sources {
		if src.Incremental || !src.Full {
			s.t.Errorf("with incremental: false, source %s read %+v, want full and not incremental", src.Name, src)
		}
	}
	want, got := fresh.profilesOf(fullFields), s.profilesOf(fullFields)
	for u, p := range want {
		if fmt.Sprint(got[u]) != fmt.Sprint(p) {
			s.t.Errorf("from scratch %s is\n%v\nincrementally\n%v", u, p, got[u])
		}
	}
	for u, p := range got {
		if want[u] == nil && p.state() != "blocked left_source" {
			s.t.Errorf("%s is %s incrementally, and not there from scratch", u, p.state())
		}
	}
}

// wantProfile fails unless username's profile is "area state [reason]".
func wantProfile(t *testing.T, ps map[string]profile, username, want string) {
	t.Helper()
	p := ps[username]
	got := "(no profile)"
	if p != nil {
		got = fmt.Sprintf("%v %s", p["area"], p.state())
	}
	if got != want {
		t.Errorf("%s: %s, want %s", username, got, want)
	}
}

// OpenLDAP.

// ldifOU is an organizationalUnit.
func ldifOU(dn string) string {
	ou := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "ou=")
	return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", dn, ou)
}

// ldifPersonRDN is an inetOrgPerson named rdn under parent with uid uid.
func ldifPersonRDN(rdn, parent, uid string) string {
	return fmt.Sprintf("dn: %s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s Person\nsn: Person\ngivenName: %s\nmail: %s@example.org\ntitle: Staff\n\n",
		rdn, parent, uid, uid, uid, uid)
}

// ldifPersonUID is an inetOrgPerson uid=uid under parent.
func ldifPersonUID(parent, uid string) string { return ldifPersonRDN("uid="+uid, parent, uid) }

// ldifGroup is a groupOfNames with the given member DNs.
func ldifGroup(dn string, members ...string) string {
	cn := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "cn=")
	s := fmt.Sprintf("dn: %s\nobjectClass: groupOfNames\ncn: %s\n", dn, cn)
	for _, m := range members {
		s += "member: " + m + "\n"
	}
	return s + "\n"
}

// startSlapd starts a slapd of the test's own, stopped when it ends, or
// skips (fails with SEATSYNC_INTEGRATION=required) when there is none.
func startSlapd(t *testing.T, opt ldaptest.SlapdOptions) *ldaptest.Slapd {
	t.Helper()
	s, err := ldaptest.StartSlapd(t.TempDir(), opt)
	if err != nil {
		ldaptest.Unavailable(t, "OpenLDAP slapd", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestIncrementalOpenLDAP: 50 people read incrementally over RFC 4533
// sync, with a syncprov session log (deletions as entryUUIDs) and without
// one (a present phase): every kind of change, each followed by an
// incremental sync that reports just that change and converges.
func TestIncrementalOpenLDAP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opt  ldaptest.SlapdOptions
	}{
		{"session log", ldaptest.SlapdOptions{SessionLog: 1000}},
		{"present phase", ldaptest.SlapdOptions{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			openLDAPIncremental(t, startSlapd(t, c.opt))
		})
	}
}

func openLDAPIncremental(t *testing.T, d *ldaptest.Slapd) {
	root := "ou=incr," + d.BaseDN
	people := "ou=people," + root
	groups := "ou=groups," + root
	elsewhere := "ou=elsewhere," + d.BaseDN
	partners, outer := "cn=partners,"+groups, "cn=outer,"+groups
	ldif := ldifOU(root) + ldifOU(people) + ldifOU(groups) + ldifOU(elsewhere)
	for _, u := range []string{"alice", "bob", "carol", "dave", "eve"} {
		ldif += ldifPersonUID(people, u)
	}
	// grace's entry is named by its cn, so her uid can change without a
	// rename of the entry.
	ldif += ldifPersonRDN("cn=grace Person", people, "grace")
	for i := range 44 {
		ldif += ldifPersonUID(people, fmt.Sprintf("user%02d", i))
	}
	// alice is a partner through a nested group.
	ldif += ldifGroup(partners, "uid=alice,"+people) + ldifGroup(outer, partners)
	d.Add(t, ldif)

	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, fmt.Sprintf(`    flavor: openldap
    page_size: 20
    timeout: 20s
    disabled_filter: "(description=disabled)"
    nested_groups: true
    area_rules:
      - group: %q
        area: partners`, outer))
	// One partner seat: alice holds it, and hands it to eve in the run
	// that moves them both.
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "{name: extranet, limit: 50,", "{name: extranet, limit: 1,", 1))
	cursor := s.firstIncrSync("corp", 50)
	ps := s.profiles()
	wantProfile(t, ps, "alice", "partners active")
	wantProfile(t, ps, "bob", "primary active")

	none := readWant{identities: 0}
	s.incrSync("nothing changed", "corp", none, nil)

	// A modify. plan reads it too, and leaves the cursor where it was.
	cursor = s.cursor("corp")
	d.Modify(t, "dn: uid=alice,"+people+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	r := s.must(exitOK, "plan", "-c", s.config, "--format", "json")
	checkRead(t, "plan of a modify", sourceReport(t, r, "corp"), readWant{identities: 1})
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"alice update"}) {
		t.Errorf("plan of a modify: changes %q, want alice update", got)
	}
	s.cursorKept("plan", "corp", cursor)
	s.incrSync("modify", "corp", readWant{identities: 1}, []string{"alice update"})
	cursor = s.cursorMoved("sync of a modify", "corp", cursor)

	d.Add(t, ldifPersonUID(people, "frank"))
	s.incrSync("add", "corp", readWant{identities: 1}, []string{"frank create"})

	d.Modify(t, "dn: uid=bob,"+people+"\nchangetype: delete\n")
	s.incrSync("delete", "corp", readWant{identities: 0, deletes: 1}, []string{"bob block left_source"})

	// A rename of the entry that changes the uid with it.
	ps = s.profiles()
	d.Modify(t, "dn: uid=carol,"+people+"\nchangetype: modrdn\nnewrdn: uid=carla\ndeleteoldrdn: 1\n")
	s.incrSync("modrdn", "corp", readWant{identities: 1}, []string{"carla update"})
	after := s.profiles()
	if after["carol"] != nil || after["carla"] == nil || after["carla"]["external_id"] != ps["carol"]["external_id"] {
		t.Errorf("modrdn: carol %v, carla %v; want carla with carol's external id", after["carol"], after["carla"])
	}

	// A uid change of an entry named by its cn.
	d.Modify(t, "dn: cn=grace Person,"+people+"\nchangetype: modify\nreplace: uid\nuid: gracie\n")
	s.incrSync("uid change", "corp", readWant{identities: 1}, []string{"gracie update"})
	if after := s.profiles(); after["grace"] != nil || after["gracie"] == nil || after["gracie"]["external_id"] != ps["grace"]["external_id"] {
		t.Errorf("uid change: grace %v, gracie %v; want gracie with grace's external id", after["grace"], after["gracie"])
	}

	d.Modify(t, "dn: uid=dave,"+people+"\nchangetype: modrdn\nnewrdn: uid=dave\ndeleteoldrdn: 1\nnewsuperior: "+elsewhere+"\n")
	s.incrSync("move out of the base", "corp", readWant{identities: 0, deletes: 1}, []string{"dave block left_source"})

	// eve joins the nested partners group, alice leaves it: both move.
	d.Modify(t, "dn: "+partners+"\nchangetype: modify\nadd: member\nmember: uid=eve,"+people+"\n-\ndelete: member\nmember: uid=alice,"+people+"\n")
	s.incrSync("group membership", "corp", readWant{identities: 2}, []string{"alice move", "eve move"})
	ps = s.profiles()
	wantProfile(t, ps, "eve", "partners active")
	wantProfile(t, ps, "alice", "primary active")

	// dave comes back into the base: his profile is his again.
	d.Modify(t, "dn: uid=dave,"+elsewhere+"\nchangetype: modrdn\nnewrdn: uid=dave\ndeleteoldrdn: 1\nnewsuperior: "+people+"\n")
	s.incrSync("back into the base", "corp", readWant{identities: 1}, []string{"dave activate"})
	wantProfile(t, s.profiles(), "dave", "primary active")

	d.Modify(t, "dn: uid=frank,"+people+"\nchangetype: modify\nadd: description\ndescription: disabled\n")
	s.incrSync("disable", "corp", readWant{identities: 1}, []string{"frank block source_disabled"})

	s.incrSync("nothing changed again", "corp", none, nil)
	ps = s.profiles()
	if got := tally(ps); got["primary/active/"] != 48 || got["partners/active/"] != 1 || got["primary/blocked/left_source"] != 1 ||
		got["primary/blocked/source_disabled"] != 1 {
		t.Errorf("at the end: %v; want 48 + 1 active, bob left, frank disabled", got)
	}
	s.sameAsFromScratch()
}

// TestIncrementalCursorThrownAway: the cursor cannot always be used. A
// slapd restarted without its session log still serves the cookie (a
// present phase), and the run stays incremental. A cookie the server
// refuses (newer than the server's state, as after a restore from a
// backup) and a cursor damaged in the store fall back to a full read that
// says why. Each time the result is the full one.
func TestIncrementalCursorThrownAway(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=people," + d.BaseDN
	ldif := ldifOU(root)
	for i := range 20 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif)
	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap\n    timeout: 20s")
	cursor := s.firstIncrSync("corp", 20)

	// Changes made while the session log held them, then slapd restarted
	// without it.
	d.Modify(t, "dn: uid=user00,"+root+"\nchangetype: delete\n")
	d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	if err := d.Reconfigure(ldaptest.SlapdOptions{}); err != nil {
		t.Fatal(err)
	}
	s.incrSync("restarted without a session log", "corp", readWant{identities: 1, deletes: 1},
		[]string{"user00 block left_source", "user01 update"})
	cursor = s.cursorMoved("restarted without a session log", "corp", cursor)

	// A cookie from the future, in a cursor that is otherwise whole.
	d.Modify(t, "dn: uid=user02,"+root+"\nchangetype: delete\n")
	d.Modify(t, "dn: uid=user03,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.setPosition("corp", withCookie(t, s.position("corp"), "rid=000,csn=29991201121931.042678Z#000000#000#000000"))
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	src := sourceReport(t, r, "corp")
	checkRead(t, "a cookie the server refuses", src, readWant{full: true, fallback: true, identities: 18})
	if !strings.Contains(src.IncrementalFallback, "refused") {
		t.Errorf("a cookie the server refuses: incremental_fallback %q does not say it was refused", src.IncrementalFallback)
	}
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"user02 block left_source", "user03 update"}) {
		t.Errorf("a cookie the server refuses: changes %q, want user02 left and user03 updated", got)
	}
	s.converged("a cookie the server refuses")
	cursor = s.cursor("corp")
	// The full read took a new cookie: the next run is incremental again.
	d.Modify(t, "dn: uid=user04,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.incrSync("after the fallback", "corp", readWant{identities: 1}, []string{"user04 update"})

	// Settings outside the source, and the file's layout, leave the
	// cursor usable; a setting of the source that decides who is in scope
	// does not.
	cfg := s.read("seatsync.yaml")
	s.write("seatsync.yaml", "# moved down a line\n"+strings.Replace(cfg, "limit: 200", "limit: 300", 1))
	d.Modify(t, "dn: uid=user06,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.incrSync("another pool limit", "corp", readWant{identities: 1}, []string{"user06 update"})
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "    flavor: openldap\n", "    flavor: openldap\n    disabled_filter: \"(description=disabled)\"\n", 1))
	d.Modify(t, "dn: uid=user07,"+root+"\nchangetype: modify\nadd: description\ndescription: disabled\n")
	r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	checkRead(t, "disabled_filter added", sourceReport(t, r, "corp"), readWant{full: true, fallback: true, identities: 18})
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"user07 block source_disabled"}) {
		t.Errorf("disabled_filter added: changes %q, want user07 disabled", got)
	}
	s.converged("disabled_filter added")

	// A cursor damaged in the store: the runner's record of it, and the
	// connector's position in it.
	for i, bad := range []string{"garbage", "damaged position"} {
		d.Modify(t, fmt.Sprintf("dn: uid=user05,%s\nchangetype: modify\nreplace: title\ntitle: Edit%d\n", root, i))
		if i == 0 {
			s.setCursor("corp", bad)
		} else {
			s.setPosition("corp", damaged(s.position("corp")))
		}
		r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		checkRead(t, "cursor "+bad[:min(len(bad), 12)], sourceReport(t, r, "corp"), readWant{full: true, fallback: true, identities: 18})
		if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"user05 update"}) {
			t.Errorf("cursor %.12q: changes %q, want user05 update", bad, got)
		}
		s.converged("a damaged cursor")
	}
}

// withCookie is an ldap cursor (connector/ldap cursor.go: ldap2.<head>.
// <known set>.<check>) with its server cookie replaced, and its check
// made again, so that the connector takes it as whole and hands the
// cookie to the server.
func withCookie(t *testing.T, cursor, cookie string) string {
	t.Helper()
	parts := strings.Split(cursor, ".")
	if len(parts) != 4 || parts[0] != "ldap2" {
		t.Fatalf("the ldap cursor %.40q is not ldap2.<head>.<known>.<check>", cursor)
	}
	head, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(head, &h); err != nil {
		t.Fatal(err)
	}
	h["c"] = []byte(cookie)
	head, err = json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	text := "ldap2." + base64.RawURLEncoding.EncodeToString(head) + "." + parts[2]
	return text + "." + fmt.Sprintf("%08x", crc32.Checksum([]byte(text), crc32.MakeTable(crc32.Castagnoli)))
}

// damaged is text with the character in the middle changed.
func damaged(text string) string {
	mid, c := len(text)/2, "x"
	if text[mid] == 'x' {
		c = "y"
	}
	return text[:mid] + c + text[mid+1:]
}

// TestIncrementalFaults: slapd killed, and slapd hung, in the middle of
// an incremental read: exit 1, nothing written, the cursor where it was;
// the next sync converges. A change set that deletes more people than
// safety.max_deprovision: exit 3, the cursor where it was, until
// --allow-deprovision.
func TestIncrementalFaults(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 1000})
	defer d.Resume() // a test that failed while it was paused
	wire, err := ldaptest.NewTripwire(strings.TrimPrefix(d.URL, "ldap://"))
	if err != nil {
		t.Fatal(err)
	}
	defer wire.Close()
	root := "ou=people," + d.BaseDN
	ldif := ldifOU(root)
	for i := range 40 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif)
	s := ldapIncrSite(t, 3, wire.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap\n    page_size: 10\n    timeout: 3s")
	cursor := s.firstIncrSync("corp", 40)

	// retitle gives 30 people a new title: a sync read long enough to be
	// cut in the middle.
	retitle := func(title string) []string {
		var mod strings.Builder
		var want []string
		for i := range 30 {
			u := fmt.Sprintf("user%02d", i)
			fmt.Fprintf(&mod, "dn: uid=%s,%s\nchangetype: modify\nreplace: title\ntitle: %s\n-\nreplace: description\ndescription: %s\n\n",
				u, root, title, strings.Repeat(title, 20))
			want = append(want, u+" update")
		}
		d.Modify(t, mod.String())
		return want
	}
	// middle is where the longest answer of the plan of the pending
	// changes is half through; plan moves no cursor.
	middle := func() int64 {
		wire.MaxBytes()
		r := s.must(exitOK, "plan", "-c", s.config, "--format", "json")
		checkRead(t, "plan", sourceReport(t, r, "corp"), readWant{identities: 30})
		s.cursorKept("plan", "corp", cursor)
		n := wire.MaxBytes()
		if n < 8<<10 {
			t.Fatalf("the plan's longest answer is %d bytes: too short to cut in the middle", n)
		}
		return n / 2
	}
	for _, c := range []struct {
		name   string
		crash  bool
		fail   func()
		revive func() error
	}{
		{"slapd killed", true, d.Kill, d.Restart},
		{"slapd hung", false, d.Pause, func() error { d.Resume(); return nil }},
	} {
		want := retitle(c.name)
		failed := make(chan struct{})
		wire.Arm(middle(), c.crash, func() { c.fail(); close(failed) })
		before := s.profiles()
		r := s.must(exitFailed, "sync", "-c", s.config, "--format", "json")
		if !wire.Tripped() {
			t.Fatalf("%s: the sync ended before the server failed", c.name)
		}
		<-failed
		wire.Disarm()
		if !strings.Contains(r.stderr, "corp") {
			t.Errorf("%s: the error does not name the source:\n%s", c.name, r)
		}
		if err := c.revive(); err != nil {
			t.Fatal(err)
		}
		if diff := diffProfiles(before, s.profiles()); diff != "" {
			t.Errorf("%s: the failed run changed profiles:\n%s", c.name, diff)
		}
		s.cursorKept(c.name, "corp", cursor)
		s.incrSync("after "+c.name, "corp", readWant{identities: 30}, want)
		cursor = s.cursorMoved("after "+c.name, "corp", cursor)
	}

	// Four people deleted, three allowed.
	for i := 30; i < 34; i++ {
		d.Modify(t, fmt.Sprintf("dn: uid=user%02d,%s\nchangetype: delete\n", i, root))
	}
	before := s.profiles()
	r := s.must(exitGuard, "sync", "-c", s.config, "--format", "json")
	if rep := decodeReport(t, r); !rep.Guard.Tripped || rep.Guard.Deprovisions != 4 {
		t.Errorf("guard: %+v, want tripped by 4 deprovisions", rep.Guard)
	}
	if diff := diffProfiles(before, s.profiles()); diff != "" {
		t.Errorf("the refused run changed profiles:\n%s", diff)
	}
	s.cursorKept("refused by the guard", "corp", cursor)
	// The next run reads the same deletions again.
	s.must(exitGuard, "sync", "-c", s.config)
	s.incrSync("--allow-deprovision", "corp", readWant{identities: 0, deletes: 4},
		[]string{"user30 block left_source", "user31 block left_source", "user32 block left_source", "user33 block left_source"},
		"--allow-deprovision")
	s.cursorMoved("--allow-deprovision", "corp", cursor)

	// A share: 10% of the source's 40 profiles (36 of them active). Three
	// deletions are within it, five are not: the share is of the source's
	// profiles, not of the few an incremental run reads.
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "max_deprovision: 3}", `max_deprovision: "10%"}`, 1))
	for i := 34; i < 37; i++ {
		d.Modify(t, fmt.Sprintf("dn: uid=user%02d,%s\nchangetype: delete\n", i, root))
	}
	s.incrSync("3 deletions, 10% allowed", "corp", readWant{identities: 0, deletes: 3},
		[]string{"user34 block left_source", "user35 block left_source", "user36 block left_source"})
	for i := range 5 {
		d.Modify(t, fmt.Sprintf("dn: uid=user%02d,%s\nchangetype: delete\n", i, root))
	}
	r = s.must(exitGuard, "sync", "-c", s.config, "--format", "json")
	if rep := decodeReport(t, r); !rep.Guard.Tripped || rep.Guard.Deprovisions != 5 {
		t.Errorf("5 deletions, 10%% allowed: guard %+v, want tripped by 5", rep.Guard)
	}
}

// TestIncrementalSeats: seats stay whole-store. A seat an incremental run
// frees goes to the first in the licence queue, whether the source
// mentioned them or not, and whichever source they come from (here a csv
// export that did not change); someone queued who leaves leaves the
// queue; someone enabled again needs a seat; a person who comes back as a
// new entry meets the username their old profile holds, as in a full run.
func TestIncrementalSeats(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=people," + d.BaseDN
	ldif := ldifOU(root)
	for i := range 8 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif)
	s := siteWith(t, fmt.Sprintf(`version: 1
store: {path: seatsync.db}
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
safety: {max_deprovision: 5}
sources:
  - name: corp
    type: ldap
    flavor: openldap
    url: [%s]
    tls: {mode: starttls, ca_file: %s}
    bind_dn: %q
    bind_password_file: ldap.password
    base_dn: %q
    disabled_filter: "(description=disabled)"
    incremental: true
    full_schedule: %s
  - name: hr
    type: csv
    path: people.csv
    delimiter: ";"
    mapping: {external_id: employee_id, username: login, email: mail, given_name: first_name, family_name: last_name}
log: {level: warn}
`, d.URL, d.CA.File, d.AdminDN, root, neverFull))
	s.write("ldap.password", d.AdminPass+"\n")
	s.people(row("E1", "zoe"))
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	checkRead(t, "first sync", sourceReport(t, r, "corp"), readWant{full: true, identities: 8})
	checkRead(t, "first sync", sourceReport(t, r, "hr"), readWant{full: true, identities: 1})
	s.converged("first sync")
	ps := s.profiles()
	for _, u := range []string{"user00", "user01", "user02", "user03", "user04"} {
		wantProfile(t, ps, u, "primary active")
	}
	for _, u := range []string{"user05", "user06", "user07", "zoe"} {
		wantProfile(t, ps, u, "primary blocked license")
	}
	del := func(u string) { d.Modify(t, "dn: uid="+u+","+root+"\nchangetype: delete\n") }

	del("user00")
	s.incrSync("an active leaves", "corp", readWant{identities: 0, deletes: 1}, []string{"user00 block left_source", "user05 activate"})
	d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\nadd: description\ndescription: disabled\n")
	s.incrSync("an active is disabled", "corp", readWant{identities: 1}, []string{"user01 block source_disabled", "user06 activate"})
	del("user07")
	s.incrSync("a queued one leaves", "corp", readWant{identities: 0, deletes: 1}, []string{"user07 block left_source"})
	del("user02")
	rep := s.incrSync("the seat goes to the csv's queued person", "corp", readWant{identities: 0, deletes: 1}, []string{"user02 block left_source", "zoe activate"})
	if a, st, reason, _ := rep.change(t, "zoe"); a != "activate" || st != "active" || reason != "seat_freed" {
		t.Errorf("zoe: %s %s %s, want activate active seat_freed", a, st, reason)
	}
	checkRead(t, "the seat goes to the csv's queued person", sourceReport(t, s.must(exitOK, "plan", "-c", s.config, "--format", "json"), "hr"), readWant{identities: 0})

	// user01 enabled again: no seat is free, so they wait.
	d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\ndelete: description\n")
	s.must(exitOK, "sync", "-c", s.config)
	s.converged("enabled again")
	wantProfile(t, s.profiles(), "user01", "primary blocked license")

	// user00 comes back as a new entry: another entryUUID, their old
	// username. The skips are those of a full run.
	d.Add(t, ldifPersonUID(root, "user00"))
	r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	s.converged("back as a new entry")
	full := s.must(exitOK, "plan", "-c", s.config, "--full", "--format", "json")
	skips := func(rep report) []string {
		var out []string
		for _, k := range rep.Skipped {
			out = append(out, k.Source+" "+k.Reason)
		}
		slices.Sort(out)
		return out
	}
	t.Logf("back as a new entry: skipped %q, changes %q", skips(decodeReport(t, r)), changeList(decodeReport(t, r)))
	if got, want := skips(decodeReport(t, r)), skips(decodeReport(t, full)); !slices.Equal(got, want) {
		t.Errorf("back as a new entry: the incremental run skipped %q, a full plan skips %q", got, want)
	}

	// An admin blocks someone: the seat goes to the queue in a run that
	// reads no change at all.
	s.must(exitOK, "profiles", "block", "-c", s.config, "user03")
	rep = s.incrSync("an admin block", "corp", readWant{identities: 0}, []string{"user01 activate"})
	if a, _, reason, _ := rep.change(t, "user01"); a != "activate" || reason != "seat_freed" {
		t.Errorf("after an admin block: user01 %s %s, want activate seat_freed", a, reason)
	}
}

// TestIncrementalFullSchedule: once a full_schedule time has come round
// since the last full read, the next run reads in full (without a
// fallback: the cursor was fine), and the run after it is incremental
// again. The schedule is every minute; the test waits for minutes to
// start rather than asserting how long anything takes.
func TestIncrementalFullSchedule(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=people," + d.BaseDN
	ldif := ldifOU(root)
	for i := range 10 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif)
	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap")
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "full_schedule: "+neverFull, `full_schedule: "* * * * *"`, 1))
	nextMinute := func() { time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + time.Second))) }
	// The first two runs in the same minute.
	if time.Now().Second() > 40 {
		nextMinute()
	}
	s.firstIncrSync("corp", 10)
	d.Modify(t, "dn: uid=user00,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.incrSync("within the minute", "corp", readWant{identities: 1}, []string{"user00 update"})

	nextMinute()
	d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: delete\n")
	s.incrSync("a new minute", "corp", readWant{full: true, identities: 9, anyMode: true}, []string{"user01 block left_source"})
	d.Modify(t, "dn: uid=user02,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.incrSync("after the full read", "corp", readWant{identities: 1}, []string{"user02 update"})
}

// TestIncrementalOnLeave: a delete notice follows on_leave: delete
// deletes the profile, keep leaves it as it is; each as a full run would.
func TestIncrementalOnLeave(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	for _, c := range []struct {
		onLeave string
		want    []string
		after   string
	}{
		{"delete", []string{"user00 delete"}, "(no profile)"},
		{"keep", nil, "primary active"},
	} {
		root := "ou=" + c.onLeave + "," + d.BaseDN
		ldif := ldifOU(root)
		for i := range 10 {
			ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
		}
		d.Add(t, ldif)
		s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap")
		s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "on_leave: block", "on_leave: "+c.onLeave, 1))
		s.firstIncrSync("corp", 10)
		d.Modify(t, "dn: uid=user00,"+root+"\nchangetype: delete\n")
		d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
		s.incrSync("on_leave: "+c.onLeave, "corp", readWant{identities: 1, deletes: 1}, append(c.want, "user01 update"))
		wantProfile(t, s.profiles(), "user00", c.after)
	}
}

// TestIncrementalScope: people leave and join the scope without their
// entries going: a scope group (`groups`) they are taken out of or put
// into, and a user_filter they stop or start matching.
func TestIncrementalScope(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opt  ldaptest.SlapdOptions
	}{
		{"session log", ldaptest.SlapdOptions{SessionLog: 100}},
		{"present phase", ldaptest.SlapdOptions{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := startSlapd(t, c.opt)
			root := "ou=scope," + d.BaseDN
			app := "cn=app," + root
			ldif := ldifOU(root)
			var members []string
			for i := range 10 {
				u := fmt.Sprintf("user%02d", i)
				ldif += ldifPersonUID(root, u)
				if i < 8 {
					members = append(members, "uid="+u+","+root)
				}
			}
			d.Add(t, ldif+ldifGroup(app, members...))
			s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, fmt.Sprintf(`    flavor: openldap
    user_filter: "(&(objectClass=inetOrgPerson)(!(employeeType=left)))"
    groups: [%q]`, app))
			s.firstIncrSync("corp", 8)

			d.Modify(t, "dn: "+app+"\nchangetype: modify\ndelete: member\nmember: uid=user00,"+root+"\n-\nadd: member\nmember: uid=user08,"+root+"\n")
			s.incrSync("scope group", "corp", readWant{identities: 1, deletes: 1}, []string{"user00 block left_source", "user08 create"})
			d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\nadd: employeeType\nemployeeType: left\n")
			s.incrSync("out of the filter", "corp", readWant{identities: 0, deletes: 1}, []string{"user01 block left_source"})
			d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: modify\ndelete: employeeType\n")
			s.incrSync("back in the filter", "corp", readWant{identities: 1}, []string{"user01 activate"})
			d.Modify(t, "dn: "+app+"\nchangetype: modify\nadd: member\nmember: uid=user00,"+root+"\n")
			s.incrSync("back in the group", "corp", readWant{identities: 1}, []string{"user00 activate"})
		})
	}
}

// TestIncrementalProducts: with per-product licences the plan reads every
// profile, and an incremental run still grants and recalls only as a full
// run would: a change elsewhere leaves the grants alone; a recall by group
// and a leaver each free a licence for the queue.
func TestIncrementalProducts(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=products," + d.BaseDN
	crm := "cn=crm," + root
	ldif := ldifOU(root)
	for i := range 6 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif+ldifGroup(crm, "uid=user00,"+root, "uid=user01,"+root, "uid=user02,"+root, "uid=user03,"+root))
	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap")
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "safety:", fmt.Sprintf(`  products:
    - name: crm
      limit: 2
      grant:
        - group: %q
safety:`, crm), 1))
	s.firstIncrSync("corp", 6)
	grants := func(r result) []string { return decodeProductReport(t, r).grants() }
	run := func(what string, want readWant, changes []string) {
		t.Helper()
		r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		checkRead(t, what, sourceReport(t, r, "corp"), want)
		got := grants(r)
		slices.Sort(got)
		slices.Sort(changes)
		if !slices.Equal(got, changes) {
			t.Errorf("%s: product changes %q, want %q", what, got, changes)
		}
		s.converged(what)
	}
	d.Modify(t, "dn: uid=user05,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	run("a change elsewhere", readWant{identities: 1}, nil)
	d.Modify(t, "dn: "+crm+"\nchangetype: modify\ndelete: member\nmember: uid=user00,"+root+"\n")
	run("out of the group", readWant{identities: 1}, []string{"recall crm user00 no_rule", "grant crm user02 seat_freed"})
	d.Modify(t, "dn: uid=user01,"+root+"\nchangetype: delete\n")
	run("a leaver", readWant{identities: 0, deletes: 1}, []string{"recall crm user01 blocked", "grant crm user03 seat_freed"})
}

// TestIncrementalDeleteAfter: a leaver blocked longer than delete_after is
// deleted by a run that reads no change at all, as by a full run; and a
// pool's reserve holds in incremental runs (limit 4, reserve 1).
func TestIncrementalDeleteAfter(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=after," + d.BaseDN
	ldif := ldifOU(root)
	for i := range 5 {
		ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
	}
	d.Add(t, ldif)
	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap\n    delete_after: 5s")
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "{name: primary, limit: 200,", "{name: primary, limit: 4, reserve: 1,", 1))
	s.firstIncrSync("corp", 5)
	ps := s.profiles()
	if got := tally(ps); got["primary/active/"] != 3 || got["primary/blocked/license"] != 2 {
		t.Fatalf("first sync: %v, want 3 active (4 less the reserve) and 2 queued", got)
	}
	d.Modify(t, "dn: uid=user00,"+root+"\nchangetype: delete\n")
	s.incrSync("a leaver", "corp", readWant{identities: 0, deletes: 1}, []string{"user00 block left_source", "user03 activate"})
	s.incrSync("before delete_after", "corp", readWant{identities: 0}, nil)
	// Wait until delete_after has passed since the block.
	blocked, err := time.Parse(time.RFC3339, fmt.Sprint(s.profiles()["user00"]["blocked_at"]))
	if err != nil {
		t.Fatalf("user00's blocked_at: %v", err)
	}
	time.Sleep(time.Until(blocked.Add(6 * time.Second)))
	s.incrSync("after delete_after", "corp", readWant{identities: 0}, []string{"user00 delete"})
	wantProfile(t, s.profiles(), "user00", "(no profile)")
}

// TestIncrementalLeavesSuspended: a read of changes that skips an entry
// whose external id cannot be read suspends the source's leavers for that
// run (SPEC section 3), delete notices included. Those notices are not
// lost: the cursor stays, and once the entry can be read the deletion is
// applied, as a full run would apply it.
func TestIncrementalLeavesSuspended(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	root := "ou=people," + d.BaseDN
	person := func(uid, extra string) string {
		return fmt.Sprintf("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: Person\n%s\n", uid, root, uid, uid, extra)
	}
	ldif := ldifOU(root)
	for i := range 10 {
		ldif += person(fmt.Sprintf("user%02d", i), fmt.Sprintf("employeeNumber: E%02d\n", i))
	}
	d.Add(t, ldif)
	s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap\n    mapping: {external_id: employeeNumber}")
	s.firstIncrSync("corp", 10)

	// nox has no employeeNumber; user00 is deleted in the same run.
	d.Add(t, person("nox", ""))
	d.Modify(t, "dn: uid=user00,"+root+"\nchangetype: delete\n")
	cursor := s.cursor("corp")
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	s.cursorKept("leavers suspended", "corp", cursor) // the notices are read again
	var rep struct {
		Sources []struct {
			LeavesSuspended string `json:"leaves_suspended"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Sources) != 1 || rep.Sources[0].LeavesSuspended == "" {
		t.Errorf("the run with nox skipped does not say leavers are suspended: %v\n%s", err, r.stdout)
	}
	if got := changeList(decodeReport(t, r)); len(got) != 0 {
		t.Errorf("leavers suspended: changes %q, want none", got)
	}
	wantProfile(t, s.profiles(), "user00", "primary active")
	s.converged("leavers suspended") // a full run suspends them too

	d.Modify(t, "dn: uid=nox,"+root+"\nchangetype: modify\nadd: employeeNumber\nemployeeNumber: E99\n")
	s.must(exitOK, "sync", "-c", s.config)
	s.converged("nox readable again")
	wantProfile(t, s.profiles(), "user00", "primary blocked left_source")
}

// TestIncrementalCatchUp: two things a full run acts on at once that no
// change of the source brings in, which an incremental run notices and
// catches up with by a full read at the next run (docs/behaviour.md): a
// username freed by a rename, which an entry skipped for taking it
// wanted; and a profile an admin deleted whose person is still there.
// Between the two runs a full plan would still change them: the contract
// that a full plan finds nothing after any incremental sync holds again
// only after the catching-up run.
func TestIncrementalCatchUp(t *testing.T) {
	t.Parallel()
	d := startSlapd(t, ldaptest.SlapdOptions{SessionLog: 100})
	t.Run("username freed", func(t *testing.T) {
		root := "ou=freed," + d.BaseDN
		ldif := ldifOU(root)
		for _, u := range []string{"alice", "bob", "carol"} {
			ldif += ldifPersonRDN("cn="+u, root, u)
		}
		d.Add(t, ldif)
		s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap")
		s.firstIncrSync("corp", 3)
		// bob takes alice's uid: skipped, as in a full run.
		d.Modify(t, "dn: cn=bob,"+root+"\nchangetype: modify\nreplace: uid\nuid: alice\n")
		r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		if rep := decodeReport(t, r); len(rep.Skipped) != 1 || len(rep.Changes) != 0 {
			t.Errorf("bob takes alice's uid: skipped %+v, changes %+v; want bob skipped, nothing changed", rep.Skipped, rep.Changes)
		}
		s.converged("bob takes alice's uid")
		// alice lets it go: the run renames her, and the next one, in
		// full, gives bob the name.
		d.Modify(t, "dn: cn=alice,"+root+"\nchangetype: modify\nreplace: uid\nuid: alicia\n")
		r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		checkRead(t, "alice lets her uid go", sourceReport(t, r, "corp"), readWant{identities: 1})
		if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"alicia update"}) {
			t.Errorf("alice lets her uid go: changes %q, want alicia update", got)
		}
		s.incrSync("the next run", "corp", readWant{full: true, fallback: true, identities: 3}, []string{"alice update"})
		if p := s.profiles()["alice"]; p == nil || p["external_id"] == s.profiles()["alicia"]["external_id"] {
			t.Errorf("after the catching-up run: alice is %v, want bob's profile renamed", p)
		}
		s.incrSync("then incremental again", "corp", readWant{identities: 0}, nil)
	})
	t.Run("admin delete", func(t *testing.T) {
		root := "ou=deleted," + d.BaseDN
		ldif := ldifOU(root)
		for i := range 5 {
			ldif += ldifPersonUID(root, fmt.Sprintf("user%02d", i))
		}
		d.Add(t, ldif)
		s := ldapIncrSite(t, 5, d.URL, d.CA.File, d.AdminDN, d.AdminPass, root, "    flavor: openldap")
		s.firstIncrSync("corp", 5)
		s.must(exitOK, "profiles", "delete", "-c", s.config, "user03")
		s.incrSync("after an admin's delete", "corp", readWant{full: true, fallback: true, identities: 5}, []string{"user03 create"})
		s.incrSync("then incremental again", "corp", readWant{identities: 0}, nil)
	})
}

// Samba AD DC.

// adOU is an AD organizationalUnit.
func adOU(dn string) string { return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\n\n", dn) }

// adUser is an enabled AD user CN=sam under parent (userAccountControl
// 544: NORMAL_ACCOUNT | PASSWD_NOTREQD).
func adUser(parent, sam string) string {
	return fmt.Sprintf("dn: CN=%s,%s\nobjectClass: user\nsAMAccountName: %s\nuserAccountControl: 544\ngivenName: %s\nsn: Tester\ndisplayName: %s Tester\nmail: %s@seatsync.test\n\n",
		sam, parent, sam, sam, sam, sam)
}

// adGroup is an AD global security group with the given members.
func adGroup(dn, sam string, members ...string) string {
	s := fmt.Sprintf("dn: %s\nobjectClass: group\nsAMAccountName: %s\n", dn, sam)
	for _, m := range members {
		s += "member: " + m + "\n"
	}
	return s + "\n"
}

// TestIncrementalActiveDirectory: the same sequence over DirSync, bound
// as a Domain Admin: deletions come as tombstones, matched by objectGUID;
// membership changes arrive on the group, through nested groups too.
func TestIncrementalActiveDirectory(t *testing.T) {
	t.Parallel()
	ad, err := ldaptest.StartSamba(t.TempDir())
	if err != nil {
		ldaptest.Unavailable(t, "Samba AD DC", err)
	}
	defer ad.Close()
	root := "OU=incr," + ad.BaseDN
	people := "OU=People," + root
	gone := "OU=Gone," + root
	groups := "OU=Groups," + root
	partners, outer, inner := "CN=Partners,"+groups, "CN=Outer,"+groups, "CN=Inner,"+groups
	ldif := adOU(root) + adOU(people) + adOU(gone) + adOU(groups)
	for _, u := range []string{"alice", "bob", "carol", "dave", "eve"} {
		ldif += adUser(people, u)
	}
	for i := range 25 {
		ldif += adUser(people, fmt.Sprintf("user%02d", i))
	}
	ldif += adGroup(partners, "partners", "CN=alice,"+people) + adGroup(outer, "outer", partners) +
		adGroup(inner, "inner", "CN=user00,"+people, "CN=user01,"+people)
	ad.Add(t, ldif)

	s := ldapIncrSite(t, 5, ad.URL, ad.CA.File, ad.AdminUPN, ad.AdminPass, people, fmt.Sprintf(`    flavor: active_directory
    page_size: 10
    nested_groups: true
    area_rules:
      - group: %q
        area: partners`, outer))
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "{name: extranet, limit: 50,", "{name: extranet, limit: 3,", 1))
	s.firstIncrSync("corp", 30)
	wantProfile(t, s.profiles(), "alice", "partners active")

	none := readWant{identities: 0}
	s.incrSync("nothing changed", "corp", none, nil)
	ad.Modify(t, "dn: CN=alice,"+people+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.incrSync("modify", "corp", readWant{identities: 1}, []string{"alice update"})
	ad.Add(t, adUser(people, "frank"))
	s.incrSync("add", "corp", readWant{identities: 1}, []string{"frank create"})
	ad.Modify(t, "dn: CN=bob,"+people+"\nchangetype: delete\n")
	s.incrSync("delete (a tombstone)", "corp", readWant{identities: 0, deletes: 1}, []string{"bob block left_source"})

	// A rename of the entry: its name changes, its sAMAccountName does
	// not, so nothing changes for the profile.
	ps := s.profiles()
	ad.Modify(t, "dn: CN=carol,"+people+"\nchangetype: modrdn\nnewrdn: CN=carla\ndeleteoldrdn: 1\n")
	s.incrSync("modrdn", "corp", readWant{identities: 1}, nil)
	// Then the sAMAccountName: the username.
	ad.Modify(t, "dn: CN=carla,"+people+"\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: carla\n")
	s.incrSync("sAMAccountName change", "corp", readWant{identities: 1}, []string{"carla update"})
	if after := s.profiles(); after["carol"] != nil || after["carla"] == nil || after["carla"]["external_id"] != ps["carol"]["external_id"] {
		t.Errorf("rename: carol %v, carla %v; want carla with carol's objectGUID", after["carol"], after["carla"])
	}

	ad.Modify(t, "dn: CN=dave,"+people+"\nchangetype: modrdn\nnewrdn: CN=dave\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	s.incrSync("move out of the base", "corp", readWant{identities: 0, deletes: 1}, []string{"dave block left_source"})

	ad.Modify(t, "dn: "+partners+"\nchangetype: modify\nadd: member\nmember: CN=eve,"+people+"\n-\ndelete: member\nmember: CN=alice,"+people+"\n")
	s.incrSync("group membership", "corp", readWant{identities: 2}, []string{"alice move", "eve move"})
	// A group joins a group: its members move with it.
	ad.Modify(t, "dn: "+partners+"\nchangetype: modify\nadd: member\nmember: "+inner+"\n")
	s.incrSync("nested group", "corp", readWant{identities: 2}, []string{"user00 move", "user01 move"})
	ps = s.profiles()
	for u, want := range map[string]string{"alice": "primary active", "eve": "partners active", "user00": "partners active", "user01": "partners active"} {
		wantProfile(t, ps, u, want)
	}

	ad.Modify(t, "dn: CN=frank,"+people+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
	s.incrSync("disable", "corp", readWant{identities: 1}, []string{"frank block source_disabled"})
	s.incrSync("nothing changed again", "corp", none, nil)
	s.sameAsFromScratch()

	// A bind account without the replication right: DirSync shows no
	// deletions, the report says so, and they wait for the full read.
	if err := ad.AddUser("plain", "Plain-User-1!"); err != nil {
		t.Fatal(err)
	}
	plain := ldapIncrSite(t, 5, ad.URL, ad.CA.File, "plain@"+ad.Realm, "Plain-User-1!", people, "    flavor: active_directory")
	plain.firstIncrSync("corp", 29)
	ad.Modify(t, "dn: CN=user02,"+people+"\nchangetype: delete\n")
	ad.Modify(t, "dn: CN=user03,"+people+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	r := plain.must(exitOK, "sync", "-c", plain.config, "--format", "json")
	src := sourceReport(t, r, "corp")
	checkRead(t, "without the replication right", src, readWant{identities: 1})
	if !src.NoDeletes {
		t.Errorf("without the replication right: the report does not say the read sees no deletions: %+v", src)
	}
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"user03 update"}) {
		t.Errorf("without the replication right: changes %q, want user03 update", got)
	}
	r = plain.must(exitOK, "sync", "-c", plain.config, "--full", "--format", "json")
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{"user02 block left_source"}) {
		t.Errorf("sync --full without the replication right: changes %q, want user02 left", got)
	}
	plain.converged("sync --full")
}

// Okta.

// TestIncrementalOkta: lastUpdated reads over more than one page, a
// suspended and a deprovisioned user, deletions from the System Log (one
// of a person the store never held), a group membership that moves
// someone, and a token that may not read the System Log, whose deletions
// wait for a full pull. The fake's clock moves 10 minutes before each
// round of changes, past the connector's 5-minute overlap, so that a read
// names just the round's changes.
func TestIncrementalOkta(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	later := func() { offset.Add(int64(10 * time.Minute)) }
	org := oktatest.New(oktatest.Options{RateLimit: -1, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	defer org.Close()
	org.AddGroup("Partners")
	ids := org.AddUsers(oktaPeople(300)...)
	// oktaPeople suspends every hundredth from the second on.
	for _, i := range []int{1, 101, 201} {
		org.UpdateUser(ids[i], func(u *oktatest.User) { u.Status = "ACTIVE" })
	}
	s := oktaSiteWith(t, org, `    token_file: okta.token
    incremental: true
    full_schedule: `+neverFull+`
    area_rules:
      - group: Partners
        area: suppliers`)
	s.write("okta.token", org.Token()+"\n")
	later()
	s.firstIncrSync("okta", 300)
	cursor := s.cursor("okta")
	login := func(i int) string { return fmt.Sprintf("user%04d@example.com", i) }

	later()
	s.incrSync("nothing changed", "okta", readWant{identities: 0}, nil)

	// 250 profiles changed: two pages of 200.
	var want []string
	for i := range 250 {
		org.UpdateUser(ids[i], func(u *oktatest.User) { u.Profile["title"] = "Changed" })
		want = append(want, login(i)+" update")
	}
	later()
	s.incrSync("250 changed", "okta", readWant{identities: 250}, want)
	cursor = s.cursorMoved("250 changed", "okta", cursor)

	org.UpdateUser(ids[5], func(u *oktatest.User) { u.Status = "SUSPENDED" })
	org.UpdateUser(ids[6], func(u *oktatest.User) { u.Status = "DEPROVISIONED" })
	later()
	s.incrSync("suspended and deprovisioned", "okta", readWant{identities: 1, deletes: 1},
		[]string{login(5) + " block source_disabled", login(6) + " block left_source"})

	// A deletion, and one of a user made and deleted since the last run,
	// whom the store never held: that notice changes nothing.
	org.DeleteUser(ids[7])
	brief := org.AddUsers(oktatest.User{Profile: map[string]any{"login": "brief@example.com", "email": "brief@example.com"}})
	org.DeleteUser(brief[0])
	later()
	s.incrSync("System Log deletions", "okta", readWant{identities: 0, deletes: 2}, []string{login(7) + " block left_source"})
	if p := s.profiles()["brief@example.com"]; p != nil {
		t.Errorf("a user deleted before any run has a profile: %v", p)
	}

	org.UpdateUser(ids[8], func(u *oktatest.User) { u.Groups = append(u.Groups, "Partners") })
	later()
	s.incrSync("joined a group", "okta", readWant{identities: 1}, []string{login(8) + " move"})
	wantProfile(t, s.profiles(), login(8), "suppliers active")

	// A cursor that is no Okta timestamp: a full read that says why.
	s.setCursor("okta", "garbage")
	org.UpdateUser(ids[11], func(u *oktatest.User) { u.Profile["title"] = "Garbled" })
	later()
	s.incrSync("garbled cursor", "okta", readWant{full: true, fallback: true, identities: 298}, []string{login(11) + " update"})

	// The System Log denied: a profile change is read, a deletion is not,
	// and nobody is taken as gone for it.
	org.DenyLogs(true)
	org.DeleteUser(ids[9])
	org.UpdateUser(ids[10], func(u *oktatest.User) { u.Profile["title"] = "Denied" })
	later()
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	src := sourceReport(t, r, "okta")
	checkRead(t, "System Log denied", src, readWant{identities: 1})
	if !src.NoDeletes {
		t.Errorf("System Log denied: the report does not say the read could not see deletions (no_deletes): %+v", src)
	}
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{login(10) + " update"}) {
		t.Errorf("System Log denied: changes %q, want %s update only", got, login(10))
	}
	wantProfile(t, s.profiles(), login(9), "primary active")
	// The full pull finds the deletion.
	r = s.must(exitChanges, "plan", "-c", s.config, "--full", "--check", "--format", "json")
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{login(9) + " block left_source"}) {
		t.Errorf("plan --full with the System Log denied: changes %q, want %s left", got, login(9))
	}
	r = s.must(exitOK, "sync", "-c", s.config, "--full", "--format", "json")
	if src := sourceReport(t, r, "okta"); !src.Full || src.Identities != 297 || src.NoDeletes {
		t.Errorf("sync --full: %+v, want a full read of 297", src)
	}
	if got := changeList(decodeReport(t, r)); !slices.Equal(got, []string{login(9) + " block left_source"}) {
		t.Errorf("sync --full: changes %q, want %s left", got, login(9))
	}
	s.converged("sync --full")
	s.sameAsFromScratch()
}

// TestIncrementalOktaScope: with `groups`, people leave and join the
// scope through their memberships (System Log events), and a member
// suspended stays in scope, disabled.
func TestIncrementalOktaScope(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	later := func() { offset.Add(int64(10 * time.Minute)) }
	org := oktatest.New(oktatest.Options{RateLimit: -1, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	defer org.Close()
	users := oktaPeople(20)
	for i := range users {
		users[i].Status = "ACTIVE"
		if i < 15 {
			users[i].Groups = []string{"Contractors"}
		}
	}
	ids := org.AddUsers(users...)
	s := oktaSiteWith(t, org, `    token_file: okta.token
    incremental: true
    full_schedule: `+neverFull+`
    groups: [Contractors]`)
	s.write("okta.token", org.Token()+"\n")
	login := func(i int) string { return fmt.Sprintf("user%04d@example.com", i) }
	later()
	s.firstIncrSync("okta", 15)

	org.UpdateUser(ids[0], func(u *oktatest.User) { u.Groups = nil })
	later()
	s.incrSync("left the group", "okta", readWant{identities: 0, deletes: 1}, []string{login(0) + " block left_source"})
	org.UpdateUser(ids[15], func(u *oktatest.User) { u.Groups = []string{"Contractors"} })
	later()
	s.incrSync("joined the group", "okta", readWant{identities: 1}, []string{login(15) + " create"})
	org.UpdateUser(ids[1], func(u *oktatest.User) { u.Status = "SUSPENDED" })
	later()
	s.incrSync("a member suspended", "okta", readWant{identities: 1}, []string{login(1) + " block source_disabled"})
	// Someone outside the scope changes: the read says they are not in
	// it (a delete notice), and the store never held them: nothing.
	org.UpdateUser(ids[16], func(u *oktatest.User) { u.Profile["title"] = "Outside" })
	later()
	s.incrSync("a change outside the scope", "okta", readWant{identities: 0, deletes: 1}, nil)
	if p := s.profiles()[login(16)]; p != nil {
		t.Errorf("someone outside the scope has a profile: %v", p)
	}
}

// CSV.

// TestIncrementalCSV: a csv export is always read incrementally: a file
// that is the same (size, mtime and sha256) gives nothing to plan, even
// when it was touched; a file that changed, even with the same size and
// mtime, is read in full.
func TestIncrementalCSV(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{primaryLimit: "10", maxDeprov: "50%"}, fivePeople()...)
	cursor := s.firstIncrSync("hr", 5)

	before := s.profiles()
	s.incrSync("unchanged", "hr", readWant{identities: 0}, nil)
	if diff := diffProfiles(before, s.profiles()); diff != "" {
		t.Errorf("an unchanged file changed profiles:\n%s", diff)
	}
	path := filepath.Join(s.dir, "people.csv")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	touched := fi.ModTime().Add(time.Hour)
	if err := os.Chtimes(path, touched, touched); err != nil {
		t.Fatal(err)
	}
	s.incrSync("touched", "hr", readWant{identities: 0}, nil)

	// Alice moves to another department of the same length, and the
	// mtime is set back: only the hash tells.
	text := s.read("people.csv")
	alice := row("E1", "alice")
	if !strings.Contains(text, alice) {
		t.Fatalf("the export has no row %q", alice)
	}
	s.write("people.csv", strings.Replace(text, alice, strings.Replace(alice, "Sales", "Sails", 1), 1))
	if err := os.Chtimes(path, touched, touched); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Fatalf("the edited file has %d bytes, was %d", fi2.Size(), fi.Size())
	}
	s.incrSync("same size and mtime, other content", "hr", readWant{full: true, identities: 5}, []string{"alice update"})
	cursor = s.cursorMoved("changed file", "hr", cursor)

	// erin leaves: plan says so and moves no cursor; sync applies it.
	text = s.read("people.csv")
	erin := row("E5", "erin") + "\n"
	if !strings.Contains(text, erin) {
		t.Fatalf("the export has no row %q", erin)
	}
	s.write("people.csv", strings.Replace(text, erin, "", 1))
	r := s.must(exitOK, "plan", "-c", s.config, "--format", "json")
	checkRead(t, "plan of a changed file", sourceReport(t, r, "hr"), readWant{full: true, identities: 4})
	s.cursorKept("plan", "hr", cursor)
	s.incrSync("a leaver", "hr", readWant{full: true, identities: 4}, []string{"erin block left_source"})
	s.cursorMoved("a leaver", "hr", cursor)
	s.incrSync("unchanged after the leaver", "hr", readWant{identities: 0}, nil)

	s.setCursor("hr", "garbage")
	s.incrSync("garbled cursor", "hr", readWant{full: true, fallback: true, identities: 4}, nil)

	// --full reads the file although it is the same.
	r = s.must(exitOK, "plan", "-c", s.config, "--full", "--format", "json")
	if src := sourceReport(t, r, "hr"); !src.Full || src.Identities != 4 || src.IncrementalFallback != "" {
		t.Errorf("plan --full: %+v, want a full read of 4", src)
	}
}
