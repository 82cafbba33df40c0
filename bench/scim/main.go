// Command scim measures pushes to a SCIM target: a first sync of 10,000
// new people into a local SCIM server (the test suite's SCIMMY), then a
// re-sync where 100 of them changed. It times the real seatsync binary
// and reads the server's own request counters.
//
//	make build && (cd internal/scimtest/server && npm ci)
//	go run ./bench/scim [-people 10000] [-changes 100]
//
// Targets: the first push sends at most 10,000 creates plus the listing
// pages, not 20,000 requests; the re-sync sends exactly 100 requests, with
// no lookups for linked users; seatsync's own CPU time is at most 0.2 ms
// a request.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const token = "bench-token-0123456789abcdef0123456789"

func main() {
	people := flag.Int("people", 10_000, "people in the first sync")
	changes := flag.Int("changes", 100, "people changed before the re-sync")
	binary := flag.String("seatsync", "bin/seatsync", "the seatsync binary")
	flag.Parse()
	if err := run(*binary, *people, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "bench/scim:", err)
		os.Exit(1)
	}
}

func run(binary string, people, changes int) error {
	bin, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "seatsync-bench-scim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	server := exec.Command("node", "internal/scimtest/server/server.js", "--token", token,
		"--store", filepath.Join(dir, "users.json"), "--port", fmt.Sprint(port))
	server.Stderr = os.Stderr
	stdin, err := server.StdinPipe() // the server exits when this closes
	if err != nil {
		return err
	}
	if err := server.Start(); err != nil {
		return fmt.Errorf("start the SCIM server (node, and npm ci in internal/scimtest/server): %w", err)
	}
	defer func() { stdin.Close(); _ = server.Process.Kill(); _ = server.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitFor(base + "/_test/health"); err != nil {
		return err
	}

	write := func(changed int) error {
		var b bytes.Buffer
		b.WriteString("employee_id;login;first_name;last_name;mail;title\n")
		for i := range people {
			title := "Employee"
			if i < changed {
				title = "Team lead"
			}
			fmt.Fprintf(&b, "E%06d;user%06d;First%d;Last%d;user%06d@example.com;%s\n", i, i, i, i, i, title)
		}
		return os.WriteFile(filepath.Join(dir, "people.csv"), b.Bytes(), 0o600)
	}
	cfg := fmt.Sprintf(`version: 1
store: {driver: sqlite, path: seatsync.db}
licensing:
  pools: [{name: primary, limit: %d, areas: [primary]}]
sources:
  - name: hr
    type: csv
    path: people.csv
    delimiter: ";"
    mapping: {external_id: employee_id, username: login, given_name: first_name, family_name: last_name, email: mail, title: title}
targets:
  - name: app
    type: scim
    url: %s/scim/v2
    token: %s
    tls: {allow_insecure: true}
    max_requests_per_second: 0
log: {level: warn, format: console}
`, people, base, token)
	if err := os.WriteFile(filepath.Join(dir, "seatsync.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	// The same sync without the target, into a store of its own: what it
	// costs is the pull, the plan and the apply, so the difference is the
	// push's.
	i := strings.Index(cfg, "targets:")
	j := strings.Index(cfg, "log:")
	noTarget := strings.Replace(cfg[:i]+cfg[j:], "path: seatsync.db", "path: baseline.db", 1)
	if err := os.WriteFile(filepath.Join(dir, "baseline.yaml"), []byte(noTarget), 0o600); err != nil {
		return err
	}

	fmt.Printf("SCIM push benchmark: %d people, then %d changed; server SCIMMY on 127.0.0.1:%d\n", people, changes, port)
	if err := write(0); err != nil {
		return err
	}
	if err := resetCounters(base); err != nil {
		return err
	}
	base1, err := sync(bin, dir, "baseline.yaml")
	if err != nil {
		return err
	}
	first, err := sync(bin, dir, "seatsync.yaml")
	if err != nil {
		return err
	}
	c1, err := counters(base)
	if err != nil {
		return err
	}
	report("first sync", first, base1, c1)
	fmt.Printf("  target: at most %d creates plus the listing pages: %v\n", people, c1.Requests["POST /Users"] <= people && c1.Total <= people+people/100+2)

	if err := write(changes); err != nil {
		return err
	}
	if err := resetCounters(base); err != nil {
		return err
	}
	base2, err := sync(bin, dir, "baseline.yaml")
	if err != nil {
		return err
	}
	second, err := sync(bin, dir, "seatsync.yaml")
	if err != nil {
		return err
	}
	c2, err := counters(base)
	if err != nil {
		return err
	}
	report("re-sync", second, base2, c2)
	fmt.Printf("  target: exactly %d requests, no lookups: %v\n", changes, c2.Total == changes && c2.lookups() == 0)
	return bare(base, people)
}

// bare creates n users with nothing but net/http, four at a time, as the
// push does: the floor of what a Go client costs against this server.
func bare(base string, n int) error {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	jobs := make(chan int)
	errs := make(chan error, 4)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for range 4 {
		go func() {
			var err error
			for i := range jobs {
				if err != nil {
					continue
				}
				body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bare%06d","active":true,"name":{"givenName":"B","familyName":"%d"}}`, i, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/scim/v2/Users", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/scim+json")
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					var v map[string]any
					err = json.NewDecoder(resp.Body).Decode(&v)
					resp.Body.Close()
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	for range 4 {
		if err := <-errs; err != nil {
			return fmt.Errorf("bare client: %w", err)
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	fmt.Printf("bare net/http client, %d creates: wall %s, CPU %s, %s a request\n", n, time.Since(start).Round(time.Millisecond),
		cpu.Round(time.Millisecond), (cpu / time.Duration(n)).Round(time.Microsecond))
	return nil
}

type measured struct {
	wall time.Duration
	cpu  time.Duration
	rss  int64 // bytes
}

func sync(bin, dir, config string) (measured, error) {
	cmd := exec.Command(bin, "sync", "-c", config)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := measured{wall: time.Since(start)}
	if err != nil {
		return m, fmt.Errorf("seatsync sync: %w\n%s", err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	m.rss = ru.Maxrss << 10
	return m, nil
}

type counterSet struct {
	Total    int            `json:"total"`
	Requests map[string]int `json:"requests"`
}

func (c counterSet) lookups() int {
	n := 0
	for k, v := range c.Requests {
		if strings.Contains(k, "filter") {
			n += v
		}
	}
	return n
}

// report prints one sync's figures; base is the same sync without the
// target, so cpu - base.cpu is what the push cost seatsync.
func report(what string, m, base measured, c counterSet) {
	push := m.cpu - base.cpu
	perReq := time.Duration(0)
	if c.Total > 0 {
		perReq = push / time.Duration(c.Total)
	}
	fmt.Printf("%s: wall %s, peak RSS %d MB; seatsync CPU %s, %s of it the push (the same sync without the target: %s, wall %s)\n",
		what, m.wall.Round(time.Millisecond), m.rss>>20, m.cpu.Round(time.Millisecond), push.Round(time.Millisecond),
		base.cpu.Round(time.Millisecond), base.wall.Round(time.Millisecond))
	fmt.Printf("  %d requests %v; push CPU per request %s (target <= 0.2ms: %v)\n",
		c.Total, c.Requests, perReq.Round(time.Microsecond), perReq <= 200*time.Microsecond)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitFor(url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the SCIM server did not answer %s", url)
}

func resetCounters(base string) error {
	req, _ := http.NewRequest(http.MethodDelete, base+"/_test/counters", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func counters(base string) (counterSet, error) {
	var c counterSet
	resp, err := http.Get(base + "/_test/counters")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	return c, json.NewDecoder(resp.Body).Decode(&c)
}
