// Command ldap benchmarks the LDAP connector against a real OpenLDAP slapd.
//
// It loads N inetOrgPerson entries (default 100,000) into a private slapd
// with slapadd, then times:
//
//  1. ldapsearch -x -E pr=1000/noprompt dumping the attributes seatsync reads
//     (the baseline: the fastest a client can read the directory);
//  2. the connector's pull alone (in a child process, for a diagnosis);
//  3. a first `seatsync sync` into an empty SQLite store, with the real
//     binary (built from ./cmd/seatsync) and a configuration file;
//  4. a no-op re-sync of the same directory.
//
// The peak RSS of each seatsync process is its own: a small wrapper
// process (this program with -wrap) starts it and reads its ru_maxrss.
// Targets: first sync <= 3x ldapsearch, no-op <= 2x, peak RSS <= 250 MB.
//
// Run it from the repository root:
//
//	go run ./bench/ldap [-n 100000] [-page 1000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	ldapsource "github.com/seatsync/seatsync/connector/ldap"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
)

const base = "ou=people,dc=example,dc=org"

var attrs = []string{"entryUUID", "uid", "mail", "givenName", "sn", "displayName", "cn", "title", "departmentNumber", "ou", "memberOf"}

func main() {
	n := flag.Int("n", 100_000, "entries to load")
	page := flag.Int("page", 1000, "page size")
	pull := flag.Bool("pull", false, "internal: pull once in this process (-url, -bind, $LDAP_PASSWORD) and print the time and peak RSS")
	wrap := flag.Bool("wrap", false, "internal: run the command in the arguments and print its wall time and peak RSS")
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
		err = bench(*n, *page)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func bench(n, page int) error {
	dir, err := os.MkdirTemp("", "seatsync-ldap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	seatsync := filepath.Join(dir, "seatsync")
	if out, err := exec.Command("go", "build", "-o", seatsync, "./cmd/seatsync").CombinedOutput(); err != nil {
		return fmt.Errorf("build seatsync (run this from the repository root): %v\n%s", err, out)
	}

	var ldif strings.Builder
	ldif.WriteString("dn: " + base + "\nobjectClass: organizationalUnit\nou: people\n\n")
	for i := range n {
		fmt.Fprintf(&ldif, "dn: uid=user%06d,%s\nobjectClass: inetOrgPerson\nuid: user%06d\ncn: Given%d Family%d\nsn: Family%d\ngivenName: Given%d\n"+
			"displayName: Given%d Family%d\nmail: user%06d@example.org\ntitle: Title %d\ndepartmentNumber: Dept%d\n\n",
			i, base, i, i, i, i, i, i, i, i, i%50, i%20)
	}
	t0 := time.Now()
	s, err := ldaptest.StartSlapd(dir, ldaptest.SlapdOptions{LDIF: ldif.String()})
	if err != nil {
		return err
	}
	defer s.Close()
	ldif.Reset()
	fmt.Printf("loaded %d entries into slapd (slapadd + start) in %s\n", n, time.Since(t0).Round(time.Millisecond))

	// Baseline: ldapsearch, output discarded.
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL, "-D", s.AdminDN, "-w", s.AdminPass,
		"-b", base, "-s", "sub", "-E", fmt.Sprintf("pr=%d/noprompt", page), "(objectClass=inetOrgPerson)"}, attrs...)
	var best time.Duration
	for range 3 { // the first run warms the server's cache
		cmd := exec.Command("ldapsearch", args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr // stdout is /dev/null
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ldapsearch: %v: %s", err, stderr.String())
		}
		best = bestOf(best, time.Since(start))
	}
	fmt.Printf("ldapsearch -E pr=%d/noprompt:   %8s\n", page, best.Round(time.Millisecond))

	env := "LDAP_PASSWORD=" + s.AdminPass
	pull, pullRSS, err := runWrapped(env, "-pull", "-url", s.URL, "-bind", s.AdminDN, "-page", fmt.Sprint(page))
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	fmt.Printf("connector pull alone:         %8s  %.2fx ldapsearch                peak RSS %d MB\n",
		pull.Round(time.Millisecond), pull.Seconds()/best.Seconds(), pullRSS>>20)

	// Each sync runs twice (the first sync into a new store each time); the
	// best time of each counts, as for ldapsearch, and the highest RSS.
	var first, noop time.Duration
	var firstRSS, noopRSS int64
	for i := range 2 {
		cfg, err := writeConfig(dir, i, s, page)
		if err != nil {
			return err
		}
		syncArgs := []string{seatsync, "sync", "-c", cfg, "-o", filepath.Join(dir, "report.txt")}
		took, rss, err := runWrapped(env, syncArgs...)
		if err != nil {
			return fmt.Errorf("first sync: %w", err)
		}
		first, firstRSS = bestOf(first, took), max(firstRSS, rss)
		took, rss, err = runWrapped(env, syncArgs...)
		if err != nil {
			return fmt.Errorf("no-op sync: %w", err)
		}
		noop, noopRSS = bestOf(noop, took), max(noopRSS, rss)
	}
	fmt.Printf("first seatsync sync:          %8s  %.2fx ldapsearch (target <= 3x)  peak RSS %d MB\n",
		first.Round(time.Millisecond), first.Seconds()/best.Seconds(), firstRSS>>20)
	fmt.Printf("no-op re-sync:                %8s  %.2fx ldapsearch (target <= 2x)  peak RSS %d MB\n",
		noop.Round(time.Millisecond), noop.Seconds()/best.Seconds(), noopRSS>>20)
	fmt.Printf("peak RSS target <= 250 MB: %v\n", max(firstRSS, noopRSS) <= 250<<20)
	return nil
}

func bestOf(best, d time.Duration) time.Duration {
	if best == 0 || d < best {
		return d
	}
	return best
}

// writeConfig writes the configuration of sync run i, with a store of
// its own, and returns its path.
func writeConfig(dir string, i int, s *ldaptest.Slapd, page int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("seatsync%d.yaml", i))
	return path, os.WriteFile(path, []byte(fmt.Sprintf(`version: 1
store: {path: %s}
licensing:
  pools: [{name: primary, limit: unlimited, areas: [primary]}]
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
    area: primary
log: {level: warn}
`, filepath.Join(dir, fmt.Sprintf("seatsync%d.db", i)), s.URL, s.AdminDN, base, page)), 0o600)
}

// runWrapped runs a command through `bench -wrap` (a program given without
// a path is this one) and returns its wall time and peak RSS.
func runWrapped(env string, args ...string) (time.Duration, int64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	if !filepath.IsAbs(args[0]) {
		args = append([]string{self}, args...)
	}
	cmd := exec.Command(self, append([]string{"-wrap", "--"}, args...)...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, err
	}
	var took time.Duration
	var rss int64
	if _, err := fmt.Sscan(string(out), &took, &rss); err != nil {
		return 0, 0, fmt.Errorf("wrapper printed %q: %w", out, err)
	}
	return took, rss, nil
}

// wrapped runs args and prints its wall time (in nanoseconds) and its peak
// RSS in bytes. A child's ru_maxrss counts the memory of the process it was
// started from, so it is this small process that starts it, not bench.
func wrapped(args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	took := time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return fmt.Errorf("no resource usage for %s", args[0])
	}
	fmt.Println(int64(took), ru.Maxrss<<10)
	return nil
}

// sourceConfig is the ldap source the pull reads.
func sourceConfig(url, admin, password string, page int) config.Source {
	return config.Source{
		Name: "bench", Type: "ldap", UsernameCase: "lower", Area: "primary", OnLeave: "block",
		Settings: &ldapsource.Settings{
			Flavor: ldapsource.FlavorOpenLDAP,
			URL:    config.StringList{url}, TLS: ldapsource.TLS{Mode: "none", AllowInsecure: true},
			BindDN: admin, BindPassword: config.NewSecret(password), BaseDN: base,
			PageSize: page, Timeout: config.Duration{Duration: time.Minute},
		},
	}
}

// childPull only pulls, counting identities. Its time is measured by the
// wrapper, so it includes the connect and bind as seatsync's does.
func childPull(url, admin, password string, page int) error {
	if prof := os.Getenv("SEATSYNC_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	src, err := ldapsource.Open(sourceConfig(url, admin, password, page), zap.NewNop())
	if err != nil {
		return err
	}
	n := 0
	if err := src.Pull(context.Background(), func(model.Identity) error { n++; return nil }, func(connector.Skip) {}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  pull: %d identities\n", n)
	return nil
}
