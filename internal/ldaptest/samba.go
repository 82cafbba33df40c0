package ldaptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Samba is a running Samba Active Directory domain controller, provisioned
// in a private directory, serving LDAP on 127.0.0.1.
//
// Samba's LDAP server has no setting for its ports: it listens on 389
// (ldap, StartTLS) and 636 (ldaps). So only one Samba can run on a machine
// at a time, and those ports must be free.
type Samba struct {
	Dir       string
	Realm     string // SEATSYNC.TEST
	BaseDN    string // DC=seatsync,DC=test
	AdminDN   string // CN=Administrator,CN=Users,DC=seatsync,DC=test
	AdminUPN  string // Administrator@SEATSYNC.TEST
	AdminPass string
	URL       string // ldap://127.0.0.1:389
	LDAPSURL  string // ldaps://127.0.0.1:636
	CA        *CA
	conf      string
	proc      *process
	lock      *os.File
}

// StartSamba provisions a domain in a new directory under dir and starts
// Samba. It takes 10 to 20 seconds.
func StartSamba(dir string) (*Samba, error) {
	sambaBin, err := lookPath("samba")
	if err != nil {
		return nil, err
	}
	tool, err := lookPath("samba-tool")
	if err != nil {
		return nil, err
	}
	if _, err := lookPath("ldapmodify"); err != nil {
		return nil, err
	}
	// One Samba at a time on this machine (go test runs packages in
	// parallel): the lock is held until Close.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "seatsync-samba-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	for _, port := range []int{389, 636} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		switch {
		case errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("samba listens on port %d, which needs root: %w", port, ErrCannotRun)
		case err != nil:
			return nil, fmt.Errorf("samba needs port %d on 127.0.0.1, which is not free: %w", port, err)
		}
		l.Close()
	}
	dir, err = os.MkdirTemp(dir, "samba-")
	if err != nil {
		return nil, err
	}
	s := &Samba{lock: lock, Dir: dir, Realm: "SEATSYNC.TEST", BaseDN: "DC=seatsync,DC=test",
		AdminDN: "CN=Administrator,CN=Users,DC=seatsync,DC=test", AdminUPN: "Administrator@SEATSYNC.TEST",
		AdminPass: "Seatsync-Test-1!", URL: "ldap://127.0.0.1:389", LDAPSURL: "ldaps://127.0.0.1:636"}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, err
	}
	opts := []string{
		"pid directory=" + dir + "/run",
		"ncalrpc dir=" + dir + "/ncalrpc",
		"winbindd socket directory=" + dir + "/winbindd",
		"ntp signd socket directory=" + dir + "/ntp",
		"lock directory=" + dir + "/lock",
		"state directory=" + dir + "/state",
		"cache directory=" + dir + "/cache",
		"private dir=" + dir + "/private",
		"binddns dir=" + dir + "/bind-dns",
		"interfaces=lo",
		"bind interfaces only=yes",
	}
	args := []string{"domain", "provision", "-s", empty, "--targetdir=" + dir, "--dns-backend=NONE",
		"--use-rfc2307", "--server-role=dc", "--realm=" + s.Realm, "--domain=SEATSYNC", "--adminpass=" + s.AdminPass}
	for _, o := range opts {
		args = append(args, "--option="+o)
	}
	if err := run(tool, args...); err != nil {
		return nil, err
	}
	if s.CA, err = NewCA(dir, "samba-ca"); err != nil {
		return nil, err
	}
	certFile, keyFile, err := s.CA.Issue(dir, "samba", "vm", "dc.seatsync.test")
	if err != nil {
		return nil, err
	}
	s.conf = filepath.Join(dir, "etc", "smb.conf")
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		return nil, err
	}
	// Options for [global] go before the first share.
	extra := fmt.Sprintf(`	ldap server require strong auth = no
	server services = ldap
	tls enabled = yes
	tls keyfile = %s
	tls certfile = %s
	tls cafile = %s
	log file = %s/log.%%m
`, keyFile, certFile, s.CA.File, dir)
	text := strings.Replace(string(conf), "\n[sysvol]", extra+"\n[sysvol]", 1)
	if err := os.WriteFile(s.conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	p, err := start(sambaBin, "-i", "-M", "single", "-s", s.conf)
	if err != nil {
		return nil, err
	}
	if err := p.waitPorts(60*time.Second, 389, 636); err != nil {
		p.stop()
		return nil, err
	}
	s.proc = p
	if err := s.waitBind(30 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	ok = true
	return s, nil
}

// waitBind waits until Administrator can bind (the LDAP port opens a moment
// before the directory is ready).
func (s *Samba) waitBind(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := LDAPModify(s.URL, s.AdminUPN, s.AdminPass, false, "", nil)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops Samba by PID.
func (s *Samba) Stop() {
	if s != nil && s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// Close stops Samba and removes its directory.
func (s *Samba) Close() {
	if s == nil {
		return
	}
	s.Stop()
	_ = os.RemoveAll(s.Dir)
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
}

// Add adds the entries of an LDIF text as Administrator.
func (s *Samba) Add(tb testing.TB, ldif string) {
	tb.Helper()
	if err := LDAPModify(s.URL, s.AdminUPN, s.AdminPass, true, ldif, nil); err != nil {
		tb.Fatal(err)
	}
}

// Modify applies an LDIF change text as Administrator.
func (s *Samba) Modify(tb testing.TB, ldif string) {
	tb.Helper()
	if err := LDAPModify(s.URL, s.AdminUPN, s.AdminPass, false, ldif, nil); err != nil {
		tb.Fatal(err)
	}
}

// AddUser creates an ordinary domain user (a member of Domain Users only)
// with a password, with samba-tool, for binds without administrative
// rights. Its DN is CN=name,CN=Users,BaseDN; it binds as name@Realm.
func (s *Samba) AddUser(name, password string) error {
	tool, err := lookPath("samba-tool")
	if err != nil {
		return err
	}
	return run(tool, "user", "create", name, password, "-s", s.conf)
}
