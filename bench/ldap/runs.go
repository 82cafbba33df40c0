package main

import (
	"context"
	"encoding/json"
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
	"github.com/seatsync/seatsync/model"
)

// measure is what the wrapper read of one process.
type measure struct {
	took, user, sys time.Duration
	rss             int64
}

// expect is what a sync's report must say.
type expect struct {
	// full: the source was read in full. Otherwise the read must have
	// been incremental.
	full bool
	// changes in all, of which creates; deletes are the source's delete
	// notices (incremental reads only), each a block (on_leave: block);
	// the rest are updates.
	changes, creates, deletes int
	// text: the run writes the text report, as a user would, and only
	// its summary line is checked. The JSON report of 100,000 creates
	// is indented in memory whole, which costs the process some 140 MB.
	text bool
}

// report is the part of the JSON report the checks read.
type report struct {
	Result  string `json:"result"`
	Error   string `json:"error"`
	Sources []struct {
		Name                string `json:"name"`
		Identities          int    `json:"identities"`
		Full                bool   `json:"full"`
		Incremental         bool   `json:"incremental"`
		IncrementalFallback string `json:"incremental_fallback"`
		Deletes             int    `json:"deletes"`
	} `json:"sources"`
	Summary struct {
		Create, Update, Block, Delete int
	} `json:"summary"`
	Changes []json.RawMessage `json:"changes"`
}

// sync runs `seatsync sync --source bench` on the store at db (args are
// more flags) with a JSON report, checks the report against want, and
// returns the measure.
func (b *bench) sync(what, db string, want expect, args ...string) (measure, error) {
	format := "json"
	if want.text {
		format = "text"
	}
	m, rep, err := b.syncWith(b.seatsync, nil, db, format, args...)
	if err != nil {
		return m, fmt.Errorf("%s: %w", what, err)
	}
	b.check(what, db, rep, want)
	return m, nil
}

// syncWith runs sync with the binary bin and more environment.
func (b *bench) syncWith(bin string, env []string, db, format string, args ...string) (measure, *report, error) {
	cfg, err := b.writeConfig(db)
	if err != nil {
		return measure{}, nil, err
	}
	out := filepath.Join(b.dir, "report."+format)
	cmd := append([]string{bin, "sync", "-c", cfg, "--source", "bench", "--format", format, "-o", out}, args...)
	m, err := b.measureEnv(env, cmd...)
	if err != nil {
		return m, nil, err
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return m, nil, err
	}
	var rep report
	if format == "text" {
		err := textSummary(raw, &rep)
		return m, &rep, err
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return m, nil, fmt.Errorf("read the report: %w", err)
	}
	return m, &rep, nil
}

// textSummary reads the counts of a text report's first line into rep.
func textSummary(raw []byte, rep *report) error {
	line, _, _ := strings.Cut(string(raw), "\n")
	var move, activate int
	s := &rep.Summary
	if _, err := fmt.Sscanf(line, "Sync: %d create, %d update, %d move, %d activate, %d block, %d delete",
		&s.Create, &s.Update, &move, &activate, &s.Block, &s.Delete); err != nil {
		return fmt.Errorf("read the text report's summary %q: %w", line, err)
	}
	rep.Result = "ok" // the command exits 1 when it is not
	rep.Changes = make([]json.RawMessage, s.Create+s.Update+move+activate+s.Block+s.Delete)
	return nil
}

// check records where rep differs from want.
func (b *bench) check(what, db string, rep *report, want expect) {
	fail := func(format string, a ...any) {
		msg := fmt.Sprintf("%s (%s): ", what, filepath.Base(db)) + fmt.Sprintf(format, a...)
		fmt.Println("check failed:", msg)
		b.failed = append(b.failed, msg)
	}
	if want.text {
		if len(rep.Changes) != want.changes || rep.Summary.Create != want.creates {
			fail("%d changes (%+v), want %d with %d creates", len(rep.Changes), rep.Summary, want.changes, want.creates)
		}
		return
	}
	if rep.Result != "ok" {
		fail("result %q: %s", rep.Result, rep.Error)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Name != "bench" {
		fail("sources %+v, want bench alone", rep.Sources)
		return
	}
	s := rep.Sources[0]
	switch {
	case want.full && !s.Full:
		fail("read incrementally, want a full read")
	case !want.full && (s.Full || !s.Incremental):
		fail("full=%v incremental=%v (fallback %q), want an incremental read", s.Full, s.Incremental, s.IncrementalFallback)
	case !want.full && s.Deletes != want.deletes:
		fail("%d delete notices, want %d", s.Deletes, want.deletes)
	}
	sum := rep.Summary
	if len(rep.Changes) != want.changes || sum.Create != want.creates || sum.Block != want.deletes ||
		sum.Update != want.changes-want.creates-want.deletes {
		fail("%d changes (%+v), want %d: %d creates, %d blocks, the rest updates", len(rep.Changes), sum, want.changes, want.creates, want.deletes)
	}
}

// fixedCosts times what every run pays before it does any work: starting
// the process (seatsync version) and loading the configuration (seatsync
// validate), each best of b.rounds.
func (b *bench) fixedCosts(db string) ([2]result, error) {
	var out [2]result
	cfg, err := b.writeConfig(db)
	if err != nil {
		return out, err
	}
	for range b.rounds {
		for i, args := range [][]string{{"version"}, {"validate", "-c", cfg}} {
			m, err := b.measure(append([]string{b.seatsync}, args...)...)
			if err != nil {
				return out, fmt.Errorf("seatsync %s: %w", args[0], err)
			}
			out[i].add(m)
		}
	}
	return out, nil
}

// measure runs a command through `bench -wrap` (a program given without a
// path is this one).
func (b *bench) measure(args ...string) (measure, error) { return b.measureEnv(nil, args...) }

func (b *bench) measureEnv(env []string, args ...string) (measure, error) {
	self, err := os.Executable()
	if err != nil {
		return measure{}, err
	}
	if !filepath.IsAbs(args[0]) {
		args = append([]string{self}, args...)
	}
	cmd := exec.Command(self, append([]string{"-wrap", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), b.env), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measure{}, err
	}
	var m measure
	if _, err := fmt.Sscan(string(out), &m.took, &m.rss, &m.user, &m.sys); err != nil {
		return measure{}, fmt.Errorf("wrapper printed %q: %w", out, err)
	}
	return m, nil
}

// wrapped runs args and prints its wall time, peak RSS in bytes, and user
// and system CPU time (times in nanoseconds). A child's ru_maxrss counts
// the memory of the process it was started from, so it is this small
// process that starts it, not bench.
func wrapped(args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr // stdout (seatsync version's, validate's) is /dev/null
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	took := time.Since(start)
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return fmt.Errorf("no resource usage for %s", args[0])
	}
	fmt.Println(int64(took), ru.Maxrss<<10, ru.Utime.Nano(), ru.Stime.Nano())
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
