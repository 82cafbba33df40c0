package ldaptest

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
)

func TestSlapdStarts(t *testing.T) {
	s, err := StartSlapd(t.TempDir(), SlapdOptions{})
	if err != nil {
		Unavailable(t, "OpenLDAP slapd", err)
	}
	defer s.Close()
	s.Add(t, "dn: ou=smoke,dc=example,dc=org\nobjectClass: organizationalUnit\nou: smoke\n")
	out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-b", "ou=smoke,dc=example,dc=org", "-s", "base", "ou").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestSambaStarts(t *testing.T) {
	s, err := StartSamba(t.TempDir())
	if err != nil {
		Unavailable(t, "Samba AD DC", err)
	}
	defer s.Close()
	out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-D", s.AdminUPN, "-w", s.AdminPass, "-b", s.BaseDN, "-s", "base", "objectGUID").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	out, err = exec.Command("ldapsearch", "-x", "-LLL", "-H", s.LDAPSURL, "-D", s.AdminUPN, "-w", s.AdminPass, "-b", s.BaseDN, "-s", "base", "dn").CombinedOutput()
	t.Logf("ldaps without CA: %v %s", err, out)
}

// TestUnavailable: a missing server skips, unless integration is required.
func TestUnavailable(t *testing.T) {
	t.Setenv("SEATSYNC_INTEGRATION", "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Unavailable(t, "slapd", fmt.Errorf("slapd: %w", ErrMissing))
	})
	if !skipped {
		t.Error("a missing server did not skip")
	}
	if _, err := lookPath("no-such-server-binary"); !errors.Is(err, ErrMissing) {
		t.Errorf("lookPath of a missing binary: %v", err)
	}
}
