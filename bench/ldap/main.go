// Command ldap benchmarks the LDAP connector against a real OpenLDAP slapd.
//
// It loads N inetOrgPerson entries (default 100,000) into a private slapd
// with slapadd, then times:
//
//  1. ldapsearch -x -E pr=1000/noprompt dumping the attributes seatsync reads
//     (the baseline: the fastest a client can read the directory);
//  2. a first sync into an empty SQLite store, through reconcile.Runner with
//     the ldap connector (what `seatsync sync` does);
//  3. a no-op re-sync of the same directory.
//
// Each sync runs in a child process, so its peak RSS is its own. Targets:
// first sync <= 3x ldapsearch, no-op <= 2x, peak RSS <= 250 MB.
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
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	ldapsource "github.com/seatsync/seatsync/connector/ldap"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

const base = "ou=people,dc=example,dc=org"

var attrs = []string{"entryUUID", "uid", "mail", "givenName", "sn", "displayName", "cn", "title", "departmentNumber", "ou", "memberOf"}

func main() {
	n := flag.Int("n", 100_000, "entries to load")
	page := flag.Int("page", 1000, "page size")
	child := flag.Bool("child", false, "internal: run one sync in this process (-url, -db, -bind, $LDAP_PASSWORD)")
	url := flag.String("url", "", "internal: the slapd URL")
	db := flag.String("db", "", "internal: the SQLite file")
	bind := flag.String("bind", "", "internal: the bind DN")
	pullOnly := flag.Bool("pull-only", false, "internal: with -child, only pull (no store), to tell the connector's time from the rest")
	flag.Parse()
	if prof := os.Getenv("SEATSYNC_CPUPROFILE"); prof != "" && *child {
		f, err := os.Create(fmt.Sprintf("%s.%d", prof, os.Getpid()))
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *child && *pullOnly {
		if err := childPull(*url, *bind, os.Getenv("LDAP_PASSWORD"), *page); err != nil {
			fmt.Fprintln(os.Stderr, err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		return
	}
	if *child {
		if err := childSync(*url, *db, *bind, os.Getenv("LDAP_PASSWORD"), *page); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*n, *page); err != nil {
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
	for range 2 { // the first run warms the server's cache
		cmd := exec.Command("ldapsearch", args...)
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		cmd.Stdout = devnull
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ldapsearch: %w", err)
		}
		devnull.Close()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	fmt.Printf("ldapsearch -E pr=%d/noprompt:   %8s\n", page, best.Round(time.Millisecond))

	db := filepath.Join(dir, "seatsync.db")
	pull, pullRSS, err := runChild([]string{"-child", "-pull-only", "-url", s.URL, "-bind", s.AdminDN, "-page", fmt.Sprint(page)}, "LDAP_PASSWORD="+s.AdminPass)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	fmt.Printf("connector pull alone:         %8s  %.2fx ldapsearch                peak RSS %d MB\n",
		pull.Round(time.Millisecond), pull.Seconds()/best.Seconds(), pullRSS>>20)
	childArgs := []string{"-child", "-url", s.URL, "-db", db, "-bind", s.AdminDN, "-page", fmt.Sprint(page)}
	env := "LDAP_PASSWORD=" + s.AdminPass
	first, firstRSS, err := runChild(childArgs, env)
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	noop, noopRSS, err := runChild(childArgs, env)
	if err != nil {
		return fmt.Errorf("no-op sync: %w", err)
	}
	fmt.Printf("first sync into empty SQLite: %8s  %.2fx ldapsearch (target <= 3x)  peak RSS %d MB\n",
		first.Round(time.Millisecond), first.Seconds()/best.Seconds(), firstRSS>>20)
	fmt.Printf("no-op re-sync:                %8s  %.2fx ldapsearch (target <= 2x)  peak RSS %d MB\n",
		noop.Round(time.Millisecond), noop.Seconds()/best.Seconds(), noopRSS>>20)
	fmt.Printf("peak RSS target <= 250 MB: %v\n", max(firstRSS, noopRSS) <= 250<<20)
	return nil
}

// runChild runs one sync in a child process and returns the time the sync
// itself took (printed by the child) and the child's peak RSS in bytes.
func runChild(args []string, env string) (time.Duration, int64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, err
	}
	var took string
	var hwm int64
	if _, err := fmt.Sscan(string(out), &took, &hwm); err != nil {
		return 0, 0, fmt.Errorf("child printed %q: %w", out, err)
	}
	d, err := time.ParseDuration(took)
	if err != nil {
		return 0, 0, fmt.Errorf("child printed %q: %w", out, err)
	}
	return d, hwm, nil
}

// peakRSS is the process's peak resident set size in bytes (VmHWM). Unlike
// getrusage's ru_maxrss of a child, it does not count the parent's memory
// from before the exec.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// sourceConfig is the ldap source the benchmark syncs.
func sourceConfig(url, admin, password string, page int) config.Source {
	return config.Source{
		Name: "bench", Type: "ldap", Flavor: ldapsource.FlavorOpenLDAP,
		URL: config.StringList{url}, TLS: config.TLS{Mode: "none", AllowInsecure: true},
		BindDN: admin, BindPassword: config.NewSecret(password), BaseDN: base,
		PageSize: page, Timeout: config.Duration{Duration: time.Minute},
		UsernameCase: "lower", Area: "primary", OnLeave: "block",
	}
}

// childPull only pulls, counting identities, and prints how long it took.
func childPull(url, admin, password string, page int) error {
	src, err := ldapsource.Open(sourceConfig(url, admin, password, page), zap.NewNop())
	if err != nil {
		return err
	}
	start := time.Now()
	n := 0
	if err := src.Pull(context.Background(), func(model.Identity) error { n++; return nil }, func(connector.Skip) {}); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "  pull: %d identities in %s\n", n, took.Round(time.Millisecond))
	fmt.Println(took, peakRSS())
	return nil
}

// childSync does what `seatsync sync` does for one ldap source, and prints
// how long the run took.
func childSync(url, db, admin, password string, page int) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := &config.Config{Version: 1}
	cfg.Licensing.Pools = []config.Pool{{Name: "primary", Limit: config.Limit{Unlimited: true}, Areas: []string{"primary"}}}
	cfg.Licensing.OnOverage = "keep"
	cfg.Safety.MaxDeprovision = config.Threshold{Percent: true, Value: 10, Set: true}
	cfg.Sources = []config.Source{sourceConfig(url, admin, password, page)}
	r := &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"ldap": ldapsource.Open}, Log: zap.NewNop()}
	start := time.Now()
	rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "  sync: %d created, %d unchanged, %d changes in %s\n",
		rep.Summary.Create, rep.Summary.Unchanged, rep.Summary.Total(), took.Round(time.Millisecond))
	fmt.Println(took, peakRSS())
	return nil
}
