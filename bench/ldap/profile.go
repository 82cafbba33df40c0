package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// profileSource is added to cmd/seatsync in the profiling build only (go
// build -overlay): seatsync itself has no profiling switch. main.go is
// overlaid too, with stopProfile() before its os.Exit.
const profileSource = `package main

import (
	"os"
	"runtime/pprof"
	"runtime/trace"
)

var stopProfile = startProfile()

// startProfile starts a CPU profile into $SEATSYNC_BENCH_CPUPROFILE and an
// execution trace into $SEATSYNC_BENCH_TRACE, each when set.
func startProfile() func() {
	var stops []func()
	if path := os.Getenv("SEATSYNC_BENCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("SEATSYNC_BENCH_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil && trace.Start(f) == nil {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
`

// buildProfiled builds seatsync with profileSource into dir.
func buildProfiled(dir string) (string, error) {
	main, err := filepath.Abs("cmd/seatsync/main.go")
	if err != nil {
		return "", err
	}
	text, err := os.ReadFile(main)
	if err != nil {
		return "", err
	}
	const exit = "\tos.Exit(code)\n"
	if strings.Count(string(text), exit) != 1 {
		return "", fmt.Errorf("cmd/seatsync/main.go: no single %q to stop the profile before", strings.TrimSpace(exit))
	}
	files := map[string]string{
		main: strings.Replace(string(text), exit, "\tstopProfile()\n"+exit, 1),
		filepath.Join(filepath.Dir(main), "zz_benchprofile.go"): profileSource,
	}
	overlay := struct{ Replace map[string]string }{Replace: map[string]string{}}
	for path, text := range files {
		to := filepath.Join(dir, "overlay-"+filepath.Base(path))
		if err := os.WriteFile(to, []byte(text), 0o600); err != nil {
			return "", err
		}
		overlay.Replace[path] = to
	}
	raw, err := json.Marshal(overlay)
	if err != nil {
		return "", err
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, raw, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "seatsync-profiled")
	if out, err := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin, "./cmd/seatsync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the profiling seatsync: %v\n%s", err, out)
	}
	return bin, nil
}

// profileRounds is how many runs of each kind are profiled: a no-op takes
// a fraction of a second, a dozen samples at pprof's 100 Hz, so the
// profiles of several are merged.
const profileRounds = 5

// profile runs the incremental syncs again with the profiling build, two
// no-op syncs read in full (--full) on the small store and two first
// syncs into new stores, and writes
// into b.profileDir, for each kind of run and store, one CPU profile
// merged over the runs and the execution trace of each run.
func (b *bench) profile(stores []string) error {
	if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
		return err
	}
	names := []string{"100k", "1m"}
	var cpu = map[string][]string{}
	run := func(kind string, i, r int, want expect, args ...string) error {
		name := fmt.Sprintf("%s-%s-%d", kind, names[i], r)
		prof := filepath.Join(b.profileDir, name+".cpu.pprof")
		env := []string{"SEATSYNC_BENCH_CPUPROFILE=" + prof, "SEATSYNC_BENCH_TRACE=" + filepath.Join(b.profileDir, name+".trace")}
		db, format := stores[i], "json"
		if want.text {
			db, format = filepath.Join(b.dir, fmt.Sprintf("profiled-first%d.db", r)), "text"
		}
		m, rep, err := b.syncWith(b.profiled, env, db, format, args...)
		if err != nil {
			return fmt.Errorf("profiled %s: %w", name, err)
		}
		b.check("profiled "+name, db, rep, want)
		fmt.Printf("profiled %-16s %6.3f s wall, %6.3f s CPU\n", name, m.took.Seconds(), (m.user + m.sys).Seconds())
		key := kind + "-" + names[i]
		cpu[key] = append(cpu[key], prof)
		return nil
	}
	// A no-op read in full, for what a full read costs beside a plain
	// pull (the first sync's read is the same, with creates after it).
	for r := range 2 {
		if err := run("full", 0, r, expect{full: true}, "--full"); err != nil {
			return err
		}
		if err := run("first", 0, r, expect{full: true, changes: b.n, creates: b.n, text: true}); err != nil {
			return err
		}
	}
	for r := range profileRounds {
		for i := range stores {
			if err := run("noop", i, r, expect{}); err != nil {
				return err
			}
		}
		if err := b.change(); err != nil {
			return err
		}
		for i := range stores {
			if err := run("changes", i, r, expect{changes: modifies + adds + deletes, creates: adds, deletes: deletes}); err != nil {
				return err
			}
		}
	}
	for key, files := range cpu {
		out, err := os.Create(filepath.Join(b.profileDir, key+".cpu.pprof"))
		if err != nil {
			return err
		}
		cmd := exec.Command("go", append([]string{"tool", "pprof", "-proto", b.profiled}, files...)...)
		cmd.Stdout = out
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err = cmd.Run()
		out.Close()
		if err != nil {
			return fmt.Errorf("merge the %s profiles: %v: %s", key, err, stderr.String())
		}
	}
	fmt.Printf("profiles in %s: <kind>-<store>.cpu.pprof merged over %d runs, and a .trace of each run; the binary is not kept, pprof reads the symbols from the profiles\n",
		b.profileDir, profileRounds)
	return nil
}
