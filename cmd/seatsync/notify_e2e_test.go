package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/seatsync/seatsync/internal/smtptest"
)

// TestNotificationsThroughTheBinary runs `seatsync sync` with a real SMTP
// server and a webhook receiver: seats_exhausted is mailed exactly once
// over three runs while the pool stays full, seats_available once a seat
// frees up, and the mail names the pool, its numbers and the people queued.
// The webhook fails twice and then succeeds.
func TestNotificationsThroughTheBinary(t *testing.T) {
	mail := smtptest.Start(t, smtptest.Options{})
	var (
		mu    sync.Mutex
		tries int
		hooks []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if tries <= 2 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		hooks = append(hooks, b.String())
	}))
	defer hook.Close()

	s := newSite(t, siteOptions{primaryLimit: "2"}, row("E1", "alice"), row("E2", "bob"), row("E3", "carol"), row("E4", "dave"))
	cfg := strings.Replace(s.read("seatsync.yaml"), "\nsources:", fmt.Sprintf(`
notify:
  email:
    to: [it-licences@example.com]
    from: seatsync@example.com
    smtp: {host: %s, port: %d, tls: none}
  webhooks:
    - {url: %s/hook, format: json, timeout: 5s}
sources:`, mail.Host, mail.Port, hook.URL), 1)
	s.write("seatsync.yaml", cfg)

	for range 3 {
		s.must(exitOK, "sync", "-c", s.config)
	}
	exhausted := subjects(mail.Messages(), "full")
	if len(exhausted) != 1 {
		t.Fatalf("seats_exhausted mails over three full runs: %d, want 1 (all: %v)", len(exhausted), subjects(mail.Messages(), ""))
	}
	body := mail.Messages()[0].Body
	for _, want := range []string{"primary", "carol", "dave", "2"} {
		if !strings.Contains(body, want) {
			t.Errorf("the seats_exhausted mail does not mention %q:\n%s", want, body)
		}
	}

	// alice leaves: her seat goes to carol, first in the queue.
	s.people(row("E2", "bob"), row("E3", "carol"), row("E4", "dave"))
	s.must(exitOK, "sync", "-c", s.config, "--allow-deprovision")
	if got := subjects(mail.Messages(), "free seats"); len(got) != 1 {
		t.Errorf("seats_available mails: %d, want 1 (all: %v)", len(got), subjects(mail.Messages(), ""))
	}

	mu.Lock()
	defer mu.Unlock()
	if tries < 3 || len(hooks) == 0 || !strings.Contains(hooks[0], "seats_exhausted") {
		t.Errorf("webhook: %d tries, delivered %v; want a seats_exhausted delivered after two failures", tries, hooks)
	}
}

// subjects lists the subjects of the messages that contain word ("" for all).
func subjects(msgs []smtptest.Message, word string) []string {
	var out []string
	for _, m := range msgs {
		if subj := m.Header.Get("Subject"); strings.Contains(strings.ToLower(subj), word) {
			out = append(out, subj)
		}
	}
	return out
}
