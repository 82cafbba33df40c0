package ldap

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
)

// A skipped entry is never a leaver (docs/behaviour.md): these tests run
// the rule through slapd or Samba, the connector, the runner and a SQLite
// store.

// ldifPersonCN is an inetOrgPerson named by its cn, so that its uid can be
// removed (slapd refuses to remove a value of the RDN).
func ldifPersonCN(parent, uid string, extra ...string) string {
	return strings.Replace(ldifPerson(parent, uid, extra...), "dn: uid="+uid+",", "dn: cn="+uid+" Person,", 1)
}

// same checks that the named profiles are exactly as they were.
func (s *syncer) same(before map[string]model.Profile, usernames ...string) {
	s.t.Helper()
	now := s.profiles()
	for _, u := range usernames {
		if diff := cmp.Diff(before[u], now[u]); diff != "" {
			s.t.Errorf("profile %s changed (-before +now):\n%s", u, diff)
		}
	}
}

// skipsOf lists the run's skips as "where: external id: reason", sorted.
func skipsOf(rep *reconcile.Report) []string {
	var out []string
	for _, s := range rep.Skipped {
		out = append(out, s.Where+": "+s.ExternalID+": "+s.Reason)
	}
	slices.Sort(out)
	return out
}

// TestOpenLDAPSkippedEntryKeepsItsProfile: an entry that loses its
// username, or whose mapped enabled attribute reads "maybe" or a huge
// value, is skipped with its external id: its profile stays exactly as it
// was, and the person who really left is still blocked. An entry that loses
// an optional attribute (mail, title) is no skip: the field is cleared.
func TestOpenLDAPSkippedEntryKeepsItsProfile(t *testing.T) {
	s := needSlapd(t)
	ou := unique("skipkeep")
	root := "ou=" + ou + "," + s.BaseDN
	people := "ou=people," + root
	gone := "ou=gone," + root
	s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(gone)+
		ldifPerson(people, "alice")+
		ldifPersonCN(people, "bob")+
		ldifPerson(people, "carol", "employeeType: active")+
		ldifPerson(people, "dave", "employeeType: yes")+
		ldifPerson(people, "erin", "title: Engineer")+
		ldifPerson(people, "frank"))
	src := slapdSource(s, "people,ou="+ou)
	// The attribute is found whatever case the mapping writes it in.
	src.Mapping = map[string]string{"enabled": "employeetype"}
	sy := newSyncer(t, src)
	if rep := sy.sync(); rep.Summary.Create != 6 {
		t.Fatalf("first sync: %s", summary(rep))
	}
	before := sy.profiles()

	huge := strings.Repeat("x", 10000)
	s.Modify(t, "dn: cn=bob Person,"+people+"\nchangetype: modify\ndelete: uid\n\n"+
		"dn: uid=carol,"+people+"\nchangetype: modify\nreplace: employeeType\nemployeeType: maybe\n\n"+
		"dn: uid=dave,"+people+"\nchangetype: modify\nreplace: employeeType\nemployeeType: "+huge+"\n\n"+
		"dn: uid=erin,"+people+"\nchangetype: modify\ndelete: mail\n-\ndelete: title\n\n"+
		"dn: uid=frank,"+people+"\nchangetype: modrdn\nnewrdn: uid=frank\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	rep := sy.sync()
	want := []string{
		"cn=bob Person," + people + ": " + before["bob"].ExternalID + ": no username",
		"uid=carol," + people + ": " + before["carol"].ExternalID + `: employeetype "maybe" is not a yes/no value`,
		"uid=dave," + people + ": " + before["dave"].ExternalID + `: employeetype "` + huge[:64] + `"... is not a yes/no value`,
	}
	if diff := cmp.Diff(want, skipsOf(rep)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if why := rep.Sources[0].LeavesSuspended; why != "" {
		t.Errorf("leaves suspended: %s; every skip named its external id", why)
	}
	if got := summary(rep); got != "update erin active ; block frank blocked left_source; " {
		t.Errorf("changes: %s, want erin's update and frank's block", got)
	}
	sy.same(before, "alice", "bob", "carol", "dave")
	if erin := sy.expect("erin", model.Active, model.ReasonNone, "primary"); erin.Email != "" || erin.Title != "" {
		t.Errorf("erin has email %q title %q; a missing optional attribute clears its field", erin.Email, erin.Title)
	}
	sy.expect("frank", model.Blocked, model.ReasonLeftSource, "primary")

	// Once the entries are fixed there is nothing to change.
	s.Modify(t, "dn: cn=bob Person,"+people+"\nchangetype: modify\nadd: uid\nuid: bob\n\n"+
		"dn: uid=carol,"+people+"\nchangetype: modify\nreplace: employeeType\nemployeeType: active\n\n"+
		"dn: uid=dave,"+people+"\nchangetype: modify\nreplace: employeeType\nemployeeType: yes\n")
	if rep := sy.sync(); rep.Summary.Total() != 0 || len(rep.Skipped) != 0 {
		t.Errorf("sync after the fix: %s skipped %v, want nothing", summary(rep), skipsOf(rep))
	}
	sy.same(before, "alice", "bob", "carol", "dave")
}

// TestOpenLDAPEntryWithoutExternalIDSuspendsLeaves: while an entry lacks
// the attribute mapped to external_id, nobody of the source is blocked for
// leaving, and the report says which entry is why; once it is fixed, the
// person who left is blocked.
func TestOpenLDAPEntryWithoutExternalIDSuspendsLeaves(t *testing.T) {
	s := needSlapd(t)
	ou := unique("skipnoid")
	root := "ou=" + ou + "," + s.BaseDN
	people := "ou=people," + root
	gone := "ou=gone," + root
	s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(gone)+
		ldifPerson(people, "alice", "employeeNumber: 1")+
		ldifPerson(people, "bob", "employeeNumber: 2")+
		ldifPerson(people, "carol", "employeeNumber: 3"))
	src := slapdSource(s, "people,ou="+ou)
	src.Mapping = map[string]string{"external_id": "employeeNumber"}
	sy := newSyncer(t, src)
	if rep := sy.sync(); rep.Summary.Create != 3 {
		t.Fatalf("first sync: %s", summary(rep))
	}
	before := sy.profiles()

	s.Modify(t, "dn: uid=bob,"+people+"\nchangetype: modify\ndelete: employeeNumber\n\n"+
		"dn: uid=carol,"+people+"\nchangetype: modrdn\nnewrdn: uid=carol\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	rep := sy.sync()
	if rep.Summary.Total() != 0 {
		t.Errorf("changes: %s, want none while bob's entry has no external id", summary(rep))
	}
	want := []string{"uid=bob," + people + ": : no employeeNumber attribute (the external id)"}
	if diff := cmp.Diff(want, skipsOf(rep)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	why := rep.Sources[0].LeavesSuspended
	if !strings.Contains(why, "uid=bob,"+people) || !strings.Contains(why, "nobody of source corp is blocked or deleted") {
		t.Errorf("leaves_suspended = %q, want it to name bob's entry", why)
	}
	sy.same(before, "alice", "bob", "carol")

	s.Modify(t, "dn: uid=bob,"+people+"\nchangetype: modify\nadd: employeeNumber\nemployeeNumber: 2\n")
	rep = sy.sync()
	if got := summary(rep); got != "block carol blocked left_source; " || rep.Sources[0].LeavesSuspended != "" {
		t.Errorf("sync after the fix: %s (leaves suspended %q), want carol blocked", got, rep.Sources[0].LeavesSuspended)
	}
	sy.same(before, "alice", "bob")
}

// TestOpenLDAPSkipsOutsideScope: with a `groups` scope, an entry outside
// it is out of scope even when it could not be read, so a service account
// without the external id attribute does not keep leavers from being
// blocked. An entry whose uid is gone while a posixGroup (memberUid) scopes
// the pull cannot be placed, and is skipped with its external id.
func TestOpenLDAPSkipsOutsideScope(t *testing.T) {
	s := needSlapd(t)
	t.Run("groupOfNames", func(t *testing.T) {
		ou := unique("skipscope")
		root := "ou=" + ou + "," + s.BaseDN
		people := "ou=people," + root
		groups := "ou=groups," + root
		s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(groups)+
			ldifPerson(people, "alice", "employeeNumber: 1")+
			ldifPerson(people, "bob", "employeeNumber: 2")+
			ldifPerson(people, "svc-backup")+
			ldifGroup("cn=app,"+groups, "uid=alice,"+people, "uid=bob,"+people))
		src := slapdSource(s, ou)
		src.Mapping = map[string]string{"external_id": "employeeNumber"}
		src.Groups = []string{"cn=app," + groups}
		sy := newSyncer(t, src)
		rep := sy.sync()
		if rep.Summary.Create != 2 || len(rep.Skipped) != 0 || rep.Sources[0].LeavesSuspended != "" {
			t.Fatalf("first sync: %s skipped %v suspended %q, want alice and bob created and svc-backup out of scope",
				summary(rep), skipsOf(rep), rep.Sources[0].LeavesSuspended)
		}
		s.Modify(t, "dn: cn=app,"+groups+"\nchangetype: modify\ndelete: member\nmember: uid=bob,"+people+"\n")
		if got := summary(sy.sync()); got != "block bob blocked left_source; " {
			t.Errorf("bob left the scope group: %s, want bob blocked", got)
		}
	})
	t.Run("posixGroup", func(t *testing.T) {
		ou := unique("skipposix")
		root := "ou=" + ou + "," + s.BaseDN
		people := "ou=people," + root
		groups := "ou=groups," + root
		s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(groups)+
			ldifPersonCN(people, "alice")+ldifPersonCN(people, "bob")+ldifPersonCN(people, "carol")+
			fmt.Sprintf("dn: cn=app,%s\nobjectClass: posixGroup\ncn: app\ngidNumber: 5001\nmemberUid: alice\nmemberUid: bob\nmemberUid: carol\n\n", groups))
		src := slapdSource(s, ou)
		src.Groups = []string{"cn=app," + groups}
		sy := newSyncer(t, src)
		if rep := sy.sync(); rep.Summary.Create != 3 {
			t.Fatalf("first sync: %s", summary(rep))
		}
		before := sy.profiles()
		s.Modify(t, "dn: cn=bob Person,"+people+"\nchangetype: modify\ndelete: uid\n\n"+
			"dn: cn=app,"+groups+"\nchangetype: modify\ndelete: memberUid\nmemberUid: carol\n")
		rep := sy.sync()
		want := []string{"cn=bob Person," + people + ": " + before["bob"].ExternalID +
			": no uid attribute, so its posixGroup memberships (memberUid), which decide whether it is in scope (groups), cannot be read"}
		if diff := cmp.Diff(want, skipsOf(rep)); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		if got := summary(rep); got != "block carol blocked left_source; " {
			t.Errorf("changes: %s, want only carol blocked", got)
		}
		sy.same(before, "alice", "bob")
	})
}

// TestADSkippedEntries: the same rules on Active Directory, with
// external_id mapped to employeeID and enabled to employeeType.
func TestADSkippedEntries(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	root := "OU=skip" + n + "," + s.BaseDN
	staff := "OU=Staff," + root
	gone := "OU=Gone," + root
	var ldif string
	for i, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		ldif += adUser(staff, u+n, 544, fmt.Sprintf("employeeID: E%d", i+1))
	}
	s.Add(t, adOU(root)+adOU(staff)+adOU(gone)+ldif)
	src := adSource(s, staff)
	src.Mapping = map[string]string{"external_id": "employeeID", "enabled": "employeeType"}
	sy := newSyncer(t, src)
	if rep := sy.sync(); rep.Summary.Create != 5 {
		t.Fatalf("first sync: %s", summary(rep))
	}
	before := sy.profiles()
	move := func(u string) string {
		return "dn: CN=" + u + n + "," + staff + "\nchangetype: modrdn\nnewrdn: CN=" + u + n + "\ndeleteoldrdn: 1\nnewsuperior: " + gone + "\n"
	}

	// bob's entry cannot be read but names its external id: dave, who
	// left, is blocked all the same.
	s.Modify(t, "dn: CN=bob"+n+","+staff+"\nchangetype: modify\nreplace: employeeType\nemployeeType: maybe\n\n"+move("dave"))
	rep := sy.sync()
	if got := summary(rep); got != "block dave"+n+" blocked left_source; " || len(rep.Skipped) != 1 || rep.Skipped[0].ExternalID != "E2" {
		t.Errorf("changes: %s skipped %v, want dave blocked and bob skipped", got, skipsOf(rep))
	}
	sy.same(before, "alice"+n, "bob"+n, "carol"+n, "erin"+n)

	// carol's entry lost its employeeID: erin, who left, is not blocked.
	s.Modify(t, "dn: CN=carol"+n+","+staff+"\nchangetype: modify\ndelete: employeeID\n\n"+move("erin"))
	rep = sy.sync()
	if rep.Summary.Total() != 0 || !strings.Contains(rep.Sources[0].LeavesSuspended, "CN=carol"+n+","+staff) {
		t.Errorf("changes: %s, leaves suspended %q; want none, naming carol's entry", summary(rep), rep.Sources[0].LeavesSuspended)
	}
	sy.same(before, "alice"+n, "bob"+n, "carol"+n, "erin"+n)

	s.Modify(t, "dn: CN=carol"+n+","+staff+"\nchangetype: modify\nadd: employeeID\nemployeeID: E3\n\n"+
		"dn: CN=bob"+n+","+staff+"\nchangetype: modify\ndelete: employeeType\n")
	rep = sy.sync()
	if got := summary(rep); got != "block erin"+n+" blocked left_source; " || len(rep.Skipped) != 0 {
		t.Errorf("after the fix: %s skipped %v, want erin blocked", got, skipsOf(rep))
	}
	sy.same(before, "alice"+n, "bob"+n, "carol"+n)
}
