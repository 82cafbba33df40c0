package ldaptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Slapd is a running OpenLDAP server with an mdb database under
// BaseDN, the memberof and syncprov overlays (RFC 4533 sync, refreshOnly
// and refreshAndPersist), and ldap:// (StartTLS capable) and ldaps://
// listeners on 127.0.0.1.
type Slapd struct {
	Dir       string
	BaseDN    string // dc=example,dc=org
	AdminDN   string // the rootdn
	AdminPass string
	// LimitedDN binds with a size limit of 3 entries (also for paged
	// searches), to test sizeLimitExceeded.
	LimitedDN string
	URL       string // ldap://127.0.0.1:PORT
	LDAPSURL  string // ldaps://127.0.0.1:PORT
	CA        *CA
	proc      *process
	// confHead is slapd.conf up to the syncprov options (Reconfigure).
	confHead string
}

// SlapdOptions change how StartSlapd sets up the server.
type SlapdOptions struct {
	// LDIF is loaded with slapadd before the server starts (after the base
	// entries). The memberof overlay does not see it: groups loaded this way
	// give their members no memberOf.
	LDIF string
	// SessionLog keeps a syncprov session log of that many operations
	// (syncprov-sessionlog): a sync read then learns deletions as a
	// syncIdSet of entryUUIDs. With 0 there is none, and a sync read whose
	// cookie is behind gets a present phase instead. (slapd 2.5.13 still
	// served a deletion made before a restart: see
	// TestOpenLDAPIncrementalRefused.)
	SessionLog int
	// NoPresent forbids the present phase (syncprov-nopresent): a cookie
	// the session log does not cover is refused with
	// e-syncRefreshRequired.
	NoPresent bool
}

const slapdBase = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: cn=limited,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: limited
userPassword: limited-secret
`

// StartSlapd starts a slapd in a new directory under dir.
func StartSlapd(dir string, opt SlapdOptions) (*Slapd, error) {
	var bins = map[string]string{}
	for _, b := range []string{"slapd", "slapadd", "slaptest", "ldapadd"} {
		p, err := lookPath(b)
		if err != nil {
			return nil, err
		}
		bins[b] = p
	}
	if _, err := os.Stat("/usr/lib/ldap/back_mdb.so"); err != nil {
		return nil, fmt.Errorf("slapd modules in /usr/lib/ldap: %w", ErrMissing)
	}
	dir, err := os.MkdirTemp(dir, "slapd-")
	if err != nil {
		return nil, err
	}
	s := &Slapd{Dir: dir, BaseDN: "dc=example,dc=org", AdminDN: "cn=admin,dc=example,dc=org",
		AdminPass: "admin-secret", LimitedDN: "cn=limited,dc=example,dc=org"}
	for _, d := range []string{"data", "slapd.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if s.CA, err = NewCA(dir, "slapd-ca"); err != nil {
		return nil, err
	}
	certFile, keyFile, err := s.CA.Issue(dir, "slapd")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload syncprov
moduleload ppolicy
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[2]s
TLSCertificateFile %[3]s
TLSCertificateKeyFile %[4]s
sizelimit unlimited

database mdb
maxsize 4294967296
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw %[5]s
directory %[1]s/data
index objectClass eq
index entryUUID eq
index entryCSN eq
index uid eq
index member eq
index memberUid eq
index memberOf eq
limits dn.exact="cn=limited,dc=example,dc=org" size=3 size.pr=3 size.prtotal=3
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay memberof
overlay syncprov
`, dir, s.CA.File, certFile, keyFile, s.AdminPass)
	s.confHead = conf
	confFile, err := s.writeConf(opt)
	if err != nil {
		return nil, err
	}
	ldif := filepath.Join(dir, "base.ldif")
	if err := os.WriteFile(ldif, []byte(slapdBase+"\n"+opt.LDIF), 0o600); err != nil {
		return nil, err
	}
	if err := run(bins["slapadd"], "-q", "-f", confFile, "-l", ldif); err != nil {
		return nil, err
	}
	// slaptest -F needs a database that exists, so it comes after slapadd.
	if err := run(bins["slaptest"], "-f", confFile, "-F", filepath.Join(dir, "slapd.d")); err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// writeConf writes slapd.conf with the syncprov options of opt.
func (s *Slapd) writeConf(opt SlapdOptions) (string, error) {
	conf := s.confHead
	if opt.SessionLog > 0 {
		conf += fmt.Sprintf("syncprov-sessionlog %d\n", opt.SessionLog)
	}
	if opt.NoPresent {
		conf += "syncprov-nopresent TRUE\n"
	}
	conf += "overlay ppolicy\n"
	confFile := filepath.Join(s.Dir, "slapd.conf")
	return confFile, os.WriteFile(confFile, []byte(conf), 0o600)
}

// Reconfigure stops the server, sets its syncprov options (SessionLog,
// NoPresent) to those of opt, and starts it again on the same ports, with
// the same data: as an admin who turns the session log off would. opt's
// LDIF is not loaded.
func (s *Slapd) Reconfigure(opt SlapdOptions) error {
	s.Stop()
	confFile, err := s.writeConf(opt)
	if err != nil {
		return err
	}
	slaptest, err := lookPath("slaptest")
	if err != nil {
		return err
	}
	confDir := filepath.Join(s.Dir, "slapd.d")
	if err := os.RemoveAll(confDir); err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return err
	}
	if err := run(slaptest, "-f", confFile, "-F", confDir); err != nil {
		return err
	}
	return s.Restart()
}

// Start starts (or restarts) the server on new ports.
func (s *Slapd) Start() error {
	ldapPort, err := FreePort()
	if err != nil {
		return err
	}
	ldapsPort, err := FreePort()
	if err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
	slapd, err := lookPath("slapd")
	if err != nil {
		return err
	}
	p, err := start(slapd, "-d", "0", "-h", s.URL+" "+s.LDAPSURL, "-F", filepath.Join(s.Dir, "slapd.d"))
	if err != nil {
		return err
	}
	if err := p.waitPorts(20*time.Second, ldapPort, ldapsPort); err != nil {
		p.stop()
		return err
	}
	s.proc = p
	return nil
}

// Restart stops the server and starts it again on the same ports, so
// that clients find it at the same URLs.
func (s *Slapd) Restart() error {
	s.Stop()
	slapd, err := lookPath("slapd")
	if err != nil {
		return err
	}
	var ports []int
	for _, u := range []string{s.URL, s.LDAPSURL} {
		var port int
		if _, err := fmt.Sscanf(u[strings.LastIndex(u, ":")+1:], "%d", &port); err != nil {
			return fmt.Errorf("port of %s: %w", u, err)
		}
		ports = append(ports, port)
	}
	p, err := start(slapd, "-d", "0", "-h", s.URL+" "+s.LDAPSURL, "-F", filepath.Join(s.Dir, "slapd.d"))
	if err != nil {
		return err
	}
	if err := p.waitPorts(20*time.Second, ports...); err != nil {
		p.stop()
		return err
	}
	s.proc = p
	return nil
}

// Stop stops the server by PID (SIGTERM, then SIGKILL).
func (s *Slapd) Stop() {
	if s != nil && s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *Slapd) Kill() {
	if s != nil && s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Close stops the server and removes its directory.
func (s *Slapd) Close() {
	s.Stop()
	if s != nil {
		_ = os.RemoveAll(s.Dir)
	}
}

// Add adds the entries of an LDIF text as the rootdn, with ldapadd (so
// the memberof overlay maintains memberOf).
func (s *Slapd) Add(tb testing.TB, ldif string) {
	tb.Helper()
	s.ldapmodify(tb, true, ldif)
}

// Modify applies an LDIF change text (changetype: modify, modrdn, delete)
// as the rootdn.
func (s *Slapd) Modify(tb testing.TB, ldif string) {
	tb.Helper()
	s.ldapmodify(tb, false, ldif)
}

func (s *Slapd) ldapmodify(tb testing.TB, add bool, ldif string) {
	tb.Helper()
	if err := LDAPModify(s.URL, s.AdminDN, s.AdminPass, add, ldif, nil); err != nil {
		tb.Fatal(err)
	}
}

// LDAPModify runs ldapmodify (-a to add) against url with a simple bind;
// env is added to the environment (LDAPTLS_CACERT, say).
func LDAPModify(url, bindDN, password string, add bool, ldif string, env []string) error {
	bin, err := lookPath("ldapmodify")
	if err != nil {
		return err
	}
	args := []string{"-x", "-H", url, "-D", bindDN, "-y", "/dev/stdin"}
	if add {
		args = append(args, "-a")
	}
	f, err := os.CreateTemp("", "ldif-*.ldif")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(ldif); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	args = append(args, "-f", f.Name())
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(password)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldapmodify %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, as with a hung server. Resume undoes it.
func (s *Slapd) Pause() { _ = syscall.Kill(s.proc.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *Slapd) Resume() { _ = syscall.Kill(s.proc.cmd.Process.Pid, syscall.SIGCONT) }
