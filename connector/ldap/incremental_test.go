package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
)

// incr follows one source's incremental reads and checks each against a
// full Pull.
type incr struct {
	t      *testing.T
	cfg    testConfig
	src    *source
	cursor string
	// last is the full pull after the last read, by external id.
	last map[string]model.Identity
}

func newIncr(t *testing.T, cfg testConfig) *incr {
	t.Helper()
	cfg.Incremental = true
	s, err := Open(cfg.source(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.(*source).backoff = 10 * time.Millisecond
	return &incr{t: t, cfg: cfg, src: s.(*source)}
}

// changes is what one incremental read gave.
type changes struct {
	res     connector.Result
	upserts map[string]model.Identity // by external id
	deletes []string
	skips   []connector.Skip
}

func (in *incr) read() (changes, error) {
	ch := changes{upserts: map[string]model.Identity{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := in.src.PullChanges(ctx, in.cursor, connector.ChangeSink{
		Upsert: func(id model.Identity) error {
			if _, dup := ch.upserts[id.ExternalID]; dup {
				in.t.Errorf("%s upserted twice", id.Username)
			}
			ch.upserts[id.ExternalID] = id
			return nil
		},
		Delete: func(ext string) error { ch.deletes = append(ch.deletes, ext); return nil },
		Skip:   func(s connector.Skip) { ch.skips = append(ch.skips, s) },
	})
	ch.res = res
	return ch, err
}

// step reads incrementally and checks: the upserts are the full pull's
// identities of exactly the people named by changed (usernames, as the
// full pull has them), the deletes exactly the external ids of the people
// named by gone (as the previous full pull had them).
func (in *incr) step(what string, full bool, changed, gone []string) changes {
	t := in.t
	t.Helper()
	ch, err := in.read()
	if err != nil {
		t.Fatalf("%s: PullChanges: %v", what, err)
	}
	if ch.res.Full != full {
		t.Errorf("%s: Full = %v, want %v (fallback %q)", what, ch.res.Full, full, ch.res.Fallback)
	}
	if ch.res.Cursor == "" {
		t.Fatalf("%s: no cursor", what)
	}
	in.cursor = ch.res.Cursor
	r := mustPull(t, in.cfg)
	now := map[string]model.Identity{}
	byName := map[string]model.Identity{}
	for _, id := range r.ids {
		now[id.ExternalID] = id
		byName[id.Username] = id
	}
	if full {
		changed = slices.Collect(func(yield func(string) bool) {
			for _, id := range r.ids {
				if !yield(id.Username) {
					return
				}
			}
		})
	}
	var want []string
	for _, u := range changed {
		id, ok := byName[u]
		if !ok {
			t.Fatalf("%s: %s is not in the full pull %v", what, u, r.usernames())
		}
		want = append(want, id.ExternalID)
		if got, ok := ch.upserts[id.ExternalID]; ok && fmt.Sprint(got) != fmt.Sprint(id) {
			t.Errorf("%s: upserted\n%+v\nthe full pull has\n%+v", what, got, id)
		}
	}
	var got []string
	for ext := range ch.upserts {
		got = append(got, ext)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: upserted %v, want %v", what, names(ch.upserts, in.last, got), changed)
	}
	var wantGone []string
	for _, u := range gone {
		found := false
		for ext, id := range in.last {
			if id.Username == u {
				wantGone, found = append(wantGone, ext), true
			}
		}
		if !found {
			t.Fatalf("%s: %s was not in the last full pull", what, u)
		}
	}
	slices.Sort(wantGone)
	slices.Sort(ch.deletes)
	if !slices.Equal(ch.deletes, wantGone) {
		t.Errorf("%s: deleted %v, want %v (%v)", what, ch.deletes, wantGone, gone)
	}
	in.last = now
	return ch
}

func names(ups, last map[string]model.Identity, exts []string) []string {
	var out []string
	for _, e := range exts {
		if id, ok := ups[e]; ok {
			out = append(out, id.Username)
		} else if id, ok := last[e]; ok {
			out = append(out, id.Username)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// TestOpenLDAPIncremental: every kind of change, with and without a
// syncprov session log (deletions as a syncIdSet, or a present phase).
func TestOpenLDAPIncremental(t *testing.T) {
	withLog, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{SessionLog: 1000})
	if err != nil {
		ldaptest.Unavailable(t, "OpenLDAP slapd with a session log", err)
	}
	defer withLog.Close()
	for name, s := range map[string]*ldaptest.Slapd{"present phase": needSlapd(t), "session log": withLog} {
		t.Run(name, func(t *testing.T) { openLDAPChanges(t, s) })
	}
}

func openLDAPChanges(t *testing.T, s *ldaptest.Slapd) {
	ou := unique("incr")
	root := "ou=" + ou + "," + s.BaseDN
	people := "ou=people," + root
	groups := "ou=groups," + root
	elsewhere := "ou=elsewhere" + ou + "," + s.BaseDN
	s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(groups)+
		ldifPerson(people, "alice")+ldifPerson(people, "bob")+ldifPerson(people, "carol")+ldifPerson(people, "dave")+
		ldifPerson(people, "eve")+
		ldifGroup("cn=partners,"+groups, "uid=alice,"+people)+
		ldifGroup("cn=outer,"+groups, "cn=partners,"+groups))
	s.Add(t, ldifOU(elsewhere))
	cfg := slapdSource(s, ou)
	cfg.BaseDN = root
	cfg.DisabledFilter = "(description=disabled)"
	cfg.NestedGroups = true
	cfg.AreaRules = []config.AreaRule{{Group: "cn=outer," + groups, Area: "partners"}}
	in := newIncr(t, cfg)
	first := in.step("first read", true, nil, nil)
	if first.res.Fallback != "" {
		t.Errorf("first read: Fallback %q, want none", first.res.Fallback)
	}
	in.step("nothing changed", false, nil, nil)
	s.Modify(t, "dn: uid=alice,"+people+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	in.step("modify", false, []string{"alice"}, nil)
	s.Add(t, ldifPerson(people, "frank"))
	in.step("add", false, []string{"frank"}, nil)
	s.Modify(t, "dn: uid=bob,"+people+"\nchangetype: delete\n")
	in.step("delete", false, nil, []string{"bob"})
	s.Modify(t, "dn: uid=carol,"+people+"\nchangetype: modrdn\nnewrdn: uid=carla\ndeleteoldrdn: 1\n")
	in.step("rename", false, []string{"carla"}, nil)
	s.Modify(t, "dn: uid=dave,"+people+"\nchangetype: modrdn\nnewrdn: uid=dave\ndeleteoldrdn: 1\nnewsuperior: "+elsewhere+"\n")
	in.step("move out of the base", false, nil, []string{"dave"})
	s.Modify(t, "dn: cn=partners,"+groups+"\nchangetype: modify\nadd: member\nmember: uid=eve,"+people+"\n-\ndelete: member\nmember: uid=alice,"+people+"\n")
	ch := in.step("group membership", false, []string{"alice", "eve"}, nil)
	if eve := ch.upserts[extOfUser(in.last, "eve")]; !hasGroupFold(eve.Groups, "cn=outer,"+groups) {
		t.Errorf("eve's groups %v lack cn=outer through nesting", eve.Groups)
	}
	s.Modify(t, "dn: uid=frank,"+people+"\nchangetype: modify\nadd: description\ndescription: disabled\n")
	ch = in.step("disable", false, []string{"frank"}, nil)
	if ch.upserts[extOfUser(in.last, "frank")].Enabled {
		t.Error("frank upserted enabled after disabled_filter matched")
	}
	in.step("nothing changed again", false, nil, nil)

	// A cookie edited to garbage: a full pull, saying why.
	cur, err := parseCursor(in.cursor)
	if err != nil {
		t.Fatal(err)
	}
	cur.setCookie([]byte("rid=000,csn=garbage"))
	in.cursor = cur.String()
	ch = in.step("garbage cookie", true, nil, nil)
	if ch.res.Fallback == "" {
		t.Error("garbage cookie: no Fallback")
	}
	t.Logf("garbage cookie: %s", ch.res.Fallback)
	// One character changed; "x" when it is not one already (the cursor
	// is base64, so it may be).
	mid, edit := len(in.cursor)/2, "x"
	if in.cursor[mid] == 'x' {
		edit = "y"
	}
	in.cursor = in.cursor[:mid] + edit + in.cursor[mid+1:]
	if ch = in.step("edited cursor", true, nil, nil); !strings.Contains(ch.res.Fallback, "checksum") {
		t.Errorf("edited cursor: Fallback %q", ch.res.Fallback)
	}
	// Settings changed: the cursor is not for them.
	in.cfg.UserFilter = "(&(objectClass=inetOrgPerson)(!(uid=eve)))"
	in.src = newIncr(t, in.cfg).src
	if ch = in.step("filter changed", true, nil, nil); ch.res.Fallback == "" {
		t.Error("filter changed: no Fallback")
	}
}

func extOfUser(ids map[string]model.Identity, u string) string {
	for ext, id := range ids {
		if id.Username == u {
			return ext
		}
	}
	return ""
}

// TestOpenLDAPIncrementalRefused: a restart does not lose a cookie
// (slapd 2.5 serves deletions made before it), but a cookie newer than the
// server's state (a server restored from a backup) is refused
// (unwillingToPerform): a full pull.
func TestOpenLDAPIncrementalRefused(t *testing.T) {
	s, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{SessionLog: 100, NoPresent: true})
	if err != nil {
		ldaptest.Unavailable(t, "OpenLDAP slapd", err)
	}
	defer s.Close()
	ou := unique("refused")
	root := "ou=" + ou + "," + s.BaseDN
	s.Add(t, ldifOU(root)+ldifPerson(root, "alice")+ldifPerson(root, "bob")+ldifPerson(root, "carol"))
	in := newIncr(t, slapdSource(s, ou))
	in.step("first read", true, nil, nil)
	s.Modify(t, "dn: uid=alice,"+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	in.step("modify", false, []string{"alice"}, nil)
	s.Modify(t, "dn: uid=bob,"+root+"\nchangetype: delete\n")
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	in.step("after a restart", false, nil, []string{"bob"})

	cur, err := parseCursor(in.cursor)
	if err != nil {
		t.Fatal(err)
	}
	cur.setCookie([]byte("rid=000,csn=29991201121931.042678Z#000000#000#000000"))
	in.cursor = cur.String()
	ch := in.step("a cookie from the future", true, nil, nil)
	if !strings.Contains(ch.res.Fallback, "refused") {
		t.Errorf("Fallback = %q, want the server's refusal", ch.res.Fallback)
	}
	t.Logf("fallback: %s", ch.res.Fallback)
}

// TestOpenLDAPIncrementalKilled: the server killed during an incremental
// read fails it.
func TestOpenLDAPIncrementalKilled(t *testing.T) {
	s, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{})
	if err != nil {
		ldaptest.Unavailable(t, "OpenLDAP slapd", err)
	}
	defer s.Close()
	ou := unique("killed")
	root := "ou=" + ou + "," + s.BaseDN
	ldif := ldifOU(root)
	var members []string
	for i := range 40 {
		u := fmt.Sprintf("user%02d", i)
		ldif += ldifPerson(root, u)
		members = append(members, "uid="+u+","+root)
	}
	s.Add(t, ldif+ldifGroup("cn=all,"+root, members[:20]...))
	in := newIncr(t, slapdSource(s, ou))
	in.step("first read", true, nil, nil)
	// Changed people arrive in the sync read, the group's new members in
	// the reads after it: the server dies at the first.
	var mod strings.Builder
	for _, m := range members[:20] {
		mod.WriteString("dn: " + m + "\nchangetype: modify\nreplace: title\ntitle: Changed\n\n")
	}
	mod.WriteString("dn: cn=all," + root + "\nchangetype: modify\nadd: member\n")
	for _, m := range members[20:] {
		mod.WriteString("member: " + m + "\n")
	}
	s.Modify(t, mod.String())
	killed := false
	_, err = in.src.PullChanges(context.Background(), in.cursor, connector.ChangeSink{
		Upsert: func(model.Identity) error {
			if !killed {
				killed = true
				s.Kill()
			}
			return nil
		},
		Delete: func(string) error { return nil },
		Skip:   func(connector.Skip) {},
	})
	if !killed || err == nil {
		t.Fatalf("PullChanges with the server killed: killed %v, err %v; want an error", killed, err)
	}
	t.Logf("error: %v", err)
}

// TestADIncremental: DirSync as Administrator (flags 0, deletions seen).
func TestADIncremental(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	root := "OU=incr" + n + "," + s.BaseDN
	people := "OU=People," + root
	gone := "OU=Gone," + root
	groups := "OU=Groups," + root
	partners, outer := "CN=Partners"+n+","+groups, "CN=Outer"+n+","+groups
	s.Add(t, adOU(root)+adOU(people)+adOU(gone)+adOU(groups)+
		adUser(people, "alice"+n, 544)+adUser(people, "bob"+n, 544)+adUser(people, "carol"+n, 544)+
		adUser(people, "dave"+n, 544)+adUser(people, "eve"+n, 544)+
		adGroup(partners, "partners"+n, "CN=alice"+n+","+people)+
		adGroup(outer, "outer"+n, partners))
	cfg := adSource(s, people)
	cfg.NestedGroups = true
	cfg.AreaRules = []config.AreaRule{{Group: outer, Area: "partners"}}
	in := newIncr(t, cfg)
	in.step("first read", true, nil, nil)
	in.step("nothing changed", false, nil, nil)
	s.Modify(t, "dn: CN=alice"+n+","+people+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	in.step("modify", false, []string{"alice" + n}, nil)
	s.Add(t, adUser(people, "frank"+n, 544))
	in.step("add", false, []string{"frank" + n}, nil)
	s.Modify(t, "dn: CN=bob"+n+","+people+"\nchangetype: delete\n")
	in.step("delete", false, nil, []string{"bob" + n})
	s.Modify(t, "dn: CN=carol"+n+","+people+"\nchangetype: modrdn\nnewrdn: CN=carla"+n+"\ndeleteoldrdn: 1\n")
	in.step("rename", false, []string{"carol" + n}, nil)
	s.Modify(t, "dn: CN=dave"+n+","+people+"\nchangetype: modrdn\nnewrdn: CN=dave"+n+"\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	in.step("move out of the base", false, nil, []string{"dave" + n})
	s.Modify(t, "dn: "+partners+"\nchangetype: modify\nadd: member\nmember: CN=eve"+n+","+people+"\n-\ndelete: member\nmember: CN=alice"+n+","+people+"\n")
	in.step("group membership", false, []string{"alice" + n, "eve" + n}, nil)
	s.Modify(t, "dn: CN=frank"+n+","+people+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
	ch := in.step("disable", false, []string{"frank" + n}, nil)
	if ch.upserts[extOfUser(in.last, "frank"+n)].Enabled {
		t.Error("frank upserted enabled after userAccountControl 546")
	}

	cur, err := parseCursor(in.cursor)
	if err != nil {
		t.Fatal(err)
	}
	cur.setCookie([]byte("garbage"))
	in.cursor = cur.String()
	if ch = in.step("garbage cookie", true, nil, nil); ch.res.Fallback == "" {
		t.Error("garbage cookie: no Fallback")
	}
	t.Logf("garbage cookie: %s", ch.res.Fallback)
	cur.URL, cur.dirty = "ldap://dc2.seatsync.test", true
	in.cursor = cur.String()
	if ch = in.step("another DC", true, nil, nil); !strings.Contains(ch.res.Fallback, "dc2") {
		t.Errorf("another DC: Fallback %q", ch.res.Fallback)
	}
}

// TestADIncrementalPlainUser: without the replication right DirSync
// needs LDAP_DIRSYNC_OBJECT_SECURITY, which shows no deletions.
func TestADIncrementalPlainUser(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	user := "plain" + n
	if err := s.AddUser(user, "Plain-User-1!"); err != nil {
		t.Fatal(err)
	}
	root := "OU=plain" + n + "," + s.BaseDN
	s.Add(t, adOU(root)+adUser(root, "alice"+n, 544)+adUser(root, "bob"+n, 544))
	cfg := adSource(s, root)
	cfg.BindDN, cfg.BindPassword = user+"@"+s.Realm, config.NewSecret("Plain-User-1!")
	in := newIncr(t, cfg)
	in.step("first read", true, nil, nil)
	cur, err := parseCursor(in.cursor)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Flags&1 == 0 {
		t.Errorf("DirSync flags %#x, want LDAP_DIRSYNC_OBJECT_SECURITY", cur.Flags)
	}
	s.Modify(t, "dn: CN=alice"+n+","+root+"\nchangetype: modify\nreplace: title\ntitle: Boss\n")
	s.Modify(t, "dn: CN=bob"+n+","+root+"\nchangetype: delete\n")
	ch, err := in.read()
	if err != nil {
		t.Fatal(err)
	}
	if !ch.res.NoDeletes || ch.res.Full || len(ch.deletes) != 0 || len(ch.upserts) != 1 {
		t.Errorf("read: %+v, upserts %v, deletes %v; want NoDeletes, alice only", ch.res, ch.upserts, ch.deletes)
	}
}
