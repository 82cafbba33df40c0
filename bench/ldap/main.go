// Command ldap benchmarks the LDAP connector against a real OpenLDAP slapd.
//
// It loads N inetOrgPerson entries (default 100,000) into a private slapd
// (with the syncprov overlay and a session log) with slapadd, then times,
// in one run:
//
//  1. ldapsearch -x -E pr=1000/noprompt dumping the attributes seatsync reads
//     (the yardstick: the fastest a client can read the directory);
//  2. the connector's pull alone (in a child process, for a diagnosis);
//  3. a first `seatsync sync` into an empty SQLite store, with the real
//     binary (built from ./cmd/seatsync) and a source set to
//     `incremental: true`: with no cursor yet, it reads in full;
//  4. a no-op re-sync read in full (`sync --full`);
//  5. incremental syncs with no change and with 100 changes (made with
//     ldapmodify between runs), against that store (N profiles) and
//     against a copy of it with M-N more profiles of another source (1M
//     in all by default), filled through the store's Import and not timed;
//     both run with `--source` naming the LDAP source only.
//
// The peak RSS and CPU time of each seatsync process are its own: a small
// wrapper process (this program with -wrap) starts it and reads its
// rusage. Targets: first sync <= 3x ldapsearch with a peak RSS <= 250 MB;
// incremental with 100 changes <= 0.1x, no-op <= 0.05x; each at M
// profiles <= 2x its time at N.
//
// Run it from the repository root:
//
//	go run ./bench/ldap [-n 100000] [-store 1000000] [-rounds 3] [-limit 0] [-profile DIR]
//
// The pool is unlimited unless -limit is given: with a limit, every
// transaction that gives a seat counts the pool's seats again.
//
// With -profile, one more round runs a build of seatsync that writes a CPU
// profile and an execution trace of each incremental run into DIR.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/seatsync/seatsync/internal/ldaptest"
)

const base = "ou=people,dc=example,dc=org"

var attrs = []string{"entryUUID", "uid", "mail", "givenName", "sn", "displayName", "cn", "title", "departmentNumber", "ou", "memberOf"}

// The changes each incremental round makes: modified, added and deleted
// entries, 100 in all.
const (
	modifies = 90
	adds     = 5
	deletes  = 5
)

func main() {
	n := flag.Int("n", 100_000, "entries to load")
	big := flag.Int("store", 1_000_000, "profiles in the big store (the n of the directory and the rest from another source)")
	rounds := flag.Int("rounds", 3, "timed runs of each kind; the best counts")
	page := flag.Int("page", 1000, "page size")
	limit := flag.Int("limit", 0, "the pool's seat limit (0: unlimited); a limited pool makes the apply re-count its seats")
	profile := flag.String("profile", "", "write CPU profiles and traces of one more round of incremental runs into this directory")
	pull := flag.Bool("pull", false, "internal: pull once in this process (-url, -bind, $LDAP_PASSWORD) and print the time and peak RSS")
	wrap := flag.Bool("wrap", false, "internal: run the command in the arguments and print its wall time, peak RSS and CPU time")
	url := flag.String("url", "", "internal: the slapd URL")
	bind := flag.String("bind", "", "internal: the bind DN")
	flag.Parse()
	var err error
	switch {
	case *wrap:
		err = wrapped(flag.Args())
	case *pull:
		err = childPull(*url, *bind, os.Getenv("LDAP_PASSWORD"), *page)
	default:
		b := &bench{n: *n, big: *big, rounds: *rounds, page: *page, limit: *limit, profileDir: *profile}
		err = b.run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run of the benchmark.
type bench struct {
	n, big, rounds, page, limit int
	profileDir                  string

	dir      string
	seatsync string // the binary
	profiled string // the binary that writes profiles, "" without -profile
	slapd    *ldaptest.Slapd
	env      string // LDAP_PASSWORD=...
	// round counts the ldapmodify batches made, so that each changes
	// other entries.
	round int
	// failed lists the checks of the reports that did not hold.
	failed []string
}

// result is what the table shows of one kind of run: the best time, the
// highest RSS, and the CPU time of the best run.
type result struct {
	took, cpu time.Duration
	rss       int64
}

func (r *result) add(m measure) {
	if r.took == 0 || m.took < r.took {
		r.took, r.cpu = m.took, m.user+m.sys
	}
	r.rss = max(r.rss, m.rss)
}

func (b *bench) run() error {
	var err error
	if b.dir, err = os.MkdirTemp("", "seatsync-ldap-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	b.seatsync = filepath.Join(b.dir, "seatsync")
	if out, err := exec.Command("go", "build", "-o", b.seatsync, "./cmd/seatsync").CombinedOutput(); err != nil {
		return fmt.Errorf("build seatsync (run this from the repository root): %v\n%s", err, out)
	}
	if b.profileDir != "" {
		if b.profiled, err = buildProfiled(b.dir); err != nil {
			return err
		}
	}
	if err := b.startSlapd(); err != nil {
		return err
	}
	defer b.slapd.Close()
	b.env = "LDAP_PASSWORD=" + b.slapd.AdminPass

	dump, err := b.dump()
	if err != nil {
		return err
	}
	fmt.Printf("ldapsearch -E pr=%d/noprompt: %s\n", b.page, dump.Round(time.Millisecond))
	pull, err := b.measure("-pull", "-url", b.slapd.URL, "-bind", b.slapd.AdminDN, "-page", fmt.Sprint(b.page))
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	fmt.Printf("connector pull alone: %s, peak RSS %d MB\n", pull.took.Round(time.Millisecond), pull.rss>>20)

	// First syncs, each into a new store; the last store is kept.
	var first, full result
	var small string
	for i := range b.rounds {
		small = filepath.Join(b.dir, fmt.Sprintf("small%d.db", i))
		m, err := b.sync("first sync", small, expect{full: true, changes: b.n, creates: b.n, text: true})
		if err != nil {
			return err
		}
		first.add(m)
	}
	for range b.rounds {
		m, err := b.sync("full no-op re-sync", small, expect{full: true}, "--full")
		if err != nil {
			return err
		}
		full.add(m)
	}
	fmt.Printf("first sync: %s; full no-op re-sync: %s\n", first.took.Round(time.Millisecond), full.took.Round(time.Millisecond))

	// The big store is a copy of the small one (same cursor, same runs)
	// with more profiles of another source.
	bigPath := filepath.Join(b.dir, "big.db")
	t0 := time.Now()
	if err := fillBig(small, bigPath, b.big-b.n); err != nil {
		return fmt.Errorf("fill the big store: %w", err)
	}
	fmt.Printf("filled a store of %d profiles (not timed) in %s\n", b.big, time.Since(t0).Round(time.Millisecond))

	// Each round: a no-op on both stores, then 100 changes in slapd and
	// a sync of both. The store that goes first alternates.
	stores := []string{small, bigPath}
	var noop, changed [2]result
	for r := range b.rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			m, err := b.sync("incremental no-op", stores[i], expect{})
			if err != nil {
				return err
			}
			noop[i].add(m)
		}
		if err := b.change(); err != nil {
			return err
		}
		for _, i := range order {
			m, err := b.sync("incremental, 100 changes", stores[i], expect{changes: modifies + adds + deletes, creates: adds, deletes: deletes})
			if err != nil {
				return err
			}
			changed[i].add(m)
		}
		// The yardstick again, under the load of the moment.
		d, err := b.dump()
		if err != nil {
			return err
		}
		dump = min(dump, d)
	}
	start, err := b.fixedCosts(small)
	if err != nil {
		return err
	}
	b.table(dump, first, full, noop, changed, start)
	if b.profiled != "" {
		if err := b.profile(stores); err != nil {
			return err
		}
	}
	if len(b.failed) > 0 {
		return fmt.Errorf("%d checks of the reports failed:\n  %s", len(b.failed), strings.Join(b.failed, "\n  "))
	}
	return nil
}

// startSlapd loads b.n people into a new slapd. Its session log is long
// enough for every deletion the rounds make, so that an incremental read
// learns them without a present phase.
func (b *bench) startSlapd() error {
	var ldif strings.Builder
	ldif.WriteString("dn: " + base + "\nobjectClass: organizationalUnit\nou: people\n\n")
	for i := range b.n {
		person(&ldif, i, "")
	}
	t0 := time.Now()
	s, err := ldaptest.StartSlapd(b.dir, ldaptest.SlapdOptions{LDIF: ldif.String(), SessionLog: 10_000})
	if err != nil {
		return err
	}
	b.slapd = s
	fmt.Printf("loaded %d entries into slapd (slapadd + start, syncprov with a session log) in %s\n", b.n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// person writes entry i as LDIF; changetype is "" for slapadd.
func person(w *strings.Builder, i int, changetype string) {
	fmt.Fprintf(w, "dn: uid=user%06d,%s\n", i, base)
	if changetype != "" {
		fmt.Fprintf(w, "changetype: %s\n", changetype)
	}
	fmt.Fprintf(w, "objectClass: inetOrgPerson\nuid: user%06d\ncn: Given%d Family%d\nsn: Family%d\ngivenName: Given%d\n"+
		"displayName: Given%d Family%d\nmail: user%06d@example.org\ntitle: Title %d\ndepartmentNumber: Dept%d\n\n",
		i, i, i, i, i, i, i, i, i%50, i%20)
}

// dump times ldapsearch, output discarded, best of 3 (the first warms the
// server's cache). It runs again after each round of incremental runs,
// and the best of all counts: on a shared machine the yardstick is slowed
// by the load as much as what it measures.
func (b *bench) dump() (time.Duration, error) {
	s := b.slapd
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL, "-D", s.AdminDN, "-w", s.AdminPass,
		"-b", base, "-s", "sub", "-E", fmt.Sprintf("pr=%d/noprompt", b.page), "(objectClass=inetOrgPerson)"}, attrs...)
	var best time.Duration
	for range 3 {
		cmd := exec.Command("ldapsearch", args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr // stdout is /dev/null
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("ldapsearch: %v: %s", err, stderr.String())
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// change makes the next 100 changes in slapd with ldapmodify: title and
// mail of 90 people, 5 new people, 5 deleted.
func (b *bench) change() error {
	r := b.round
	b.round++
	var ldif strings.Builder
	for i := range modifies {
		fmt.Fprintf(&ldif, "dn: uid=user%06d,%s\nchangetype: modify\nreplace: title\ntitle: Changed %d\n-\nreplace: mail\nmail: user%06d.r%d@example.org\n\n",
			r*modifies+i, base, r, r*modifies+i, r)
	}
	for i := range adds {
		person(&ldif, b.n+r*adds+i, "add")
	}
	for i := range deletes {
		fmt.Fprintf(&ldif, "dn: uid=user%06d,%s\nchangetype: delete\n\n", b.n-1-r*deletes-i, base)
	}
	s := b.slapd
	cmd := exec.Command("ldapmodify", "-x", "-H", s.URL, "-D", s.AdminDN, "-w", s.AdminPass)
	cmd.Stdin = strings.NewReader(ldif.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ldapmodify: %v: %s", err, out)
	}
	return nil
}

// writeConfig writes the configuration for the store at db, beside it.
// A second source, a csv file never pulled (the runs name --source
// bench), owns the profiles the big store adds.
func (b *bench) writeConfig(db string) (string, error) {
	path := strings.TrimSuffix(db, ".db") + ".yaml"
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	csv := filepath.Join(b.dir, "hr.csv")
	if err := os.WriteFile(csv, []byte("external_id,username,email\n"), 0o600); err != nil {
		return "", err
	}
	limit := "unlimited"
	if b.limit > 0 {
		limit = fmt.Sprint(b.limit)
	}
	s := b.slapd
	return path, os.WriteFile(path, []byte(fmt.Sprintf(`version: 1
store: {path: %s}
licensing:
  pools: [{name: primary, limit: %s, areas: [primary]}]
sources:
  - name: bench
    type: ldap
    flavor: openldap
    url: %s
    tls: {mode: none, allow_insecure: true}
    bind_dn: %q
    bind_password: ${LDAP_PASSWORD}
    base_dn: %q
    page_size: %d
    timeout: 1m
    incremental: true
    full_schedule: "0 0 1 1 *"
    area: primary
  - name: %s
    type: csv
    path: %s
    area: primary
log: {level: warn}
`, db, limit, s.URL, s.AdminDN, base, b.page, otherSource, csv)), 0o600)
}
