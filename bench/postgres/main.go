// Command postgres measures the PostgreSQL store against the SQLite store
// in the same run: a first `seatsync sync` of N CSV identities (default
// 100,000) into an empty store, then a no-op re-sync of the same file,
// each as a fresh process of the real binary.
//
// PostgreSQL is a throwaway cluster on this machine (internal/pgtest:
// fsync off, as its tests run it), on 127.0.0.1 over TCP. Each round gets a
// new SQLite file and a new database.
//
// The peak RSS of each seatsync process is its own: a small wrapper
// process (this program with -wrap) starts it and reads its ru_maxrss.
// Targets: PostgreSQL first sync <= the SQLite first sync; no-op <= 1.3x
// the SQLite no-op; peak RSS < 250 MB.
//
// Run it from the repository root:
//
//	make build && go run ./bench/postgres [-n 100000] [-rounds 3]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seatsync/seatsync/internal/pgtest"
)

func main() {
	n := flag.Int("n", 100_000, "identities in the CSV file")
	rounds := flag.Int("rounds", 3, "rounds per store; the best figure of each is shown")
	binary := flag.String("seatsync", "bin/seatsync", "the seatsync binary")
	wrap := flag.Bool("wrap", false, "internal: run the command after -- and print its wall time and peak RSS")
	flag.Parse()
	var err error
	if *wrap {
		err = wrapped(flag.Args())
	} else {
		err = run(*binary, *n, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/postgres:", err)
		os.Exit(1)
	}
}

type figure struct {
	took time.Duration
	rss  int64
}

func (f *figure) best(took time.Duration, rss int64) {
	if f.took == 0 || took < f.took {
		f.took = took
	}
	f.rss = max(f.rss, rss)
}

// serverCPU is the CPU time the PostgreSQL server under dir has used so
// far: its postmaster's, with what its exited backends used (reaped
// children's times are added to their parent's), and its live processes'.
func serverCPU(dir string) time.Duration {
	stat := func(pid string) []string {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return nil
		}
		// The fields after the command, which may hold spaces.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			return strings.Fields(string(b[i+1:]))
		}
		return nil
	}
	ticks := func(f []string, idx ...int) (n int64) {
		for _, i := range idx {
			var v int64
			fmt.Sscan(f[i], &v)
			n += v
		}
		return n
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var master string
	for _, p := range procs {
		cmd, _ := os.ReadFile(p + "/cmdline")
		argv0, _, _ := bytes.Cut(cmd, []byte{0})
		if filepath.Base(string(argv0)) == "postgres" && bytes.Contains(cmd, []byte(filepath.Join(dir, "data"))) {
			master = filepath.Base(p)
		}
	}
	if master == "" {
		return 0
	}
	// Fields from state on: utime 11, stime 12, cutime 13, cstime 14;
	// ppid is 1.
	total := ticks(stat(master), 11, 12, 13, 14)
	for _, p := range procs {
		if f := stat(filepath.Base(p)); len(f) > 14 && f[1] == master {
			total += ticks(f, 11, 12)
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

func run(binary string, n, rounds int) error {
	bin, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (make build first)", err)
	}
	dir, err := os.MkdirTemp("", "seatsync-bench-postgres-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writePeople(filepath.Join(dir, "people.csv"), n); err != nil {
		return err
	}
	srv, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer srv.Close()
	fmt.Printf("%d CSV identities; seatsync %s; PostgreSQL on 127.0.0.1:%d (%s)\n", n, binary, srv.Port, serverVersion(srv))

	var first, noop [2]figure // sqlite, postgres
	for round := range rounds {
		for i, driver := range []string{"sqlite", "postgres"} {
			store := fmt.Sprintf("{path: %s}", filepath.Join(dir, fmt.Sprintf("s%d.db", round)))
			if driver == "postgres" {
				dsn, err := newDatabase(srv, fmt.Sprintf("bench%d", round))
				if err != nil {
					return err
				}
				store = fmt.Sprintf("{driver: postgres, dsn: %q}", dsn)
			}
			cfg := filepath.Join(dir, fmt.Sprintf("%s%d.yaml", driver, round))
			if err := os.WriteFile(cfg, []byte(config(store, n)), 0o600); err != nil {
				return err
			}
			for j, f := range []*figure{&first[i], &noop[i]} {
				server := serverCPU(srv.Dir)
				took, rss, cpu, err := runWrapped(bin, "sync", "-c", cfg)
				if err != nil {
					return fmt.Errorf("%s round %d: %w", driver, round, err)
				}
				time.Sleep(200 * time.Millisecond) // its backend exits
				server = serverCPU(srv.Dir) - server
				f.best(took, rss)
				fmt.Printf("  round %d %-8s %-6s %8s  peak RSS %3d MB  seatsync CPU %7s  server CPU %7s  load %s\n",
					round+1, driver, []string{"first", "no-op"}[j], took.Round(time.Millisecond), rss>>20,
					cpu.Round(10*time.Millisecond), server.Round(10*time.Millisecond), loadavg())
			}
		}
	}
	fmt.Printf("best of %d:\n", rounds)
	fmt.Printf("first sync: sqlite %8s  postgres %8s  %.2fx (target <= 1x)     peak RSS %d / %d MB\n",
		first[0].took.Round(time.Millisecond), first[1].took.Round(time.Millisecond),
		float64(first[1].took)/float64(first[0].took), first[0].rss>>20, first[1].rss>>20)
	fmt.Printf("no-op sync: sqlite %8s  postgres %8s  %.2fx (target <= 1.3x)   peak RSS %d / %d MB\n",
		noop[0].took.Round(time.Millisecond), noop[1].took.Round(time.Millisecond),
		float64(noop[1].took)/float64(noop[0].took), noop[0].rss>>20, noop[1].rss>>20)
	fmt.Printf("targets met: first %v, no-op %v, peak RSS < 250 MB %v\n",
		first[1].took <= first[0].took, float64(noop[1].took) <= 1.3*float64(noop[0].took),
		max(first[1].rss, noop[1].rss) < 250<<20)
	return nil
}

func config(store string, n int) string {
	return fmt.Sprintf(`version: 1
store: %s
licensing:
  pools: [{name: primary, limit: %d, areas: [primary]}]
  on_overage: keep
safety:
  max_deprovision: "10%%"
sources:
  - name: hr
    type: csv
    path: people.csv
    delimiter: ","
    area: primary
    username_case: lower
log: {level: warn}
`, store, n*9/10)
}

// writePeople writes an HR export of n people as
// reconcile.BenchmarkSyncFirst100k does.
func writePeople(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "external_id,username,email,given_name,family_name,department,groups,enabled")
	for i := range n {
		fmt.Fprintf(w, "E%d,user%d,user%d@example.com,Given%d,Family%d,Dept%d,staff|team%d,yes\n", i, i, i, i, i, i%20, i%50)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func newDatabase(srv *pgtest.Server, name string) (string, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return srv.URL(name), nil
}

func serverVersion(srv *pgtest.Server) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return "?"
	}
	defer conn.Close(ctx)
	var v string
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return "PostgreSQL " + v
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// runWrapped runs a command through `postgres -wrap` and returns its wall
// time, peak RSS and CPU time (user and system).
func runWrapped(args ...string) (took time.Duration, rss int64, cpu time.Duration, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.Command(self, append([]string{"-wrap", "--"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := fmt.Sscan(string(out), &took, &rss, &cpu); err != nil {
		return 0, 0, 0, fmt.Errorf("wrapper printed %q: %w", out, err)
	}
	return took, rss, cpu, nil
}

// wrapped runs args, its output thrown away (its stderr too, unless it
// fails: the notification of a full pool), and prints its wall time (in
// nanoseconds), its peak RSS in bytes and its CPU time (nanoseconds). A child's ru_maxrss counts the
// memory of the process it was started from, so it is this small process
// that starts it, not the benchmark.
func wrapped(args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	took := time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return fmt.Errorf("no resource usage for %s", args[0])
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Println(int64(took), ru.Maxrss<<10, int64(cpu))
	return nil
}
