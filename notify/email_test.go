package notify

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/smtptest"
)

// fastRetry keeps the tests' retries short; the behaviour is the same.
var fastRetry = Retry{Attempts: 3, Backoff: 10 * time.Millisecond}

func emailSender(t *testing.T, ms *smtptest.Server, tlsMode string, ca *testCA, user, password string) *Email {
	t.Helper()
	cfg := EmailConfig{
		To: []string{"it-licences@example.com"}, From: "seatsync@example.com",
		Host: ms.Host, Port: ms.Port, TLS: tlsMode, Username: user, Password: config.NewSecret(password),
		Timeout: 10 * time.Second, Retry: fastRetry,
	}
	if ca != nil {
		cfg.RootCAs = ca.pool
	}
	s, err := NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmailOncePerEpisode: over STARTTLS with a login, seats_exhausted is
// mailed once over three runs while the pool stays full, then
// seats_available once seats free up.
func TestEmailOncePerEpisode(t *testing.T) {
	ca := newTestCA(t)
	ms := startMailServer(t, &ca, false, "seatsync", "s3cret-pass")
	log, logs := observedLogger()
	d := NewDispatcher(openStore(t, t.TempDir()), []Sender{emailSender(t, ms, TLSStartTLS, &ca, "seatsync", "s3cret-pass")},
		log, DispatcherOptions{})
	defer closeDispatcher(t, d)

	full := pool("primary", 10, 10, 5)
	d.NotifyRun(t.Context(), Run{RunID: "01R1", Events: []Event{exhausted("01R1", full, "alice", "bob", "carol", "dave", "erin")}, Pools: []PoolState{full}})
	flush(t, d)
	d.NotifyRun(t.Context(), Run{RunID: "01R2", Events: []Event{exhausted("01R2", pool("primary", 10, 10, 6), "frank")}, Pools: []PoolState{pool("primary", 10, 10, 6)}})
	flush(t, d)
	d.NotifyRun(t.Context(), Run{RunID: "01R3", Events: nil, Pools: []PoolState{pool("primary", 10, 10, 6)}})
	flush(t, d)
	msgs := ms.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails after three runs with the pool full, want 1", len(msgs))
	}
	m := msgs[0]
	if got, want := m.Header.Get("Subject"), "[seatsync] Pool primary is full: 5 people queued"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if !m.TLS || m.Authed != "seatsync" {
		t.Errorf("mail sent with TLS %v, logged in as %q; want TLS as seatsync", m.TLS, m.Authed)
	}
	if diff := cmp.Diff([]string{"it-licences@example.com"}, m.To); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Pool:      primary", "Limit:     10", "Used:      10", "Remaining: 0", "Queued:    5",
		"alice", "bob", "carol", "dave", "erin", "buy more seats", "blocking or deleting profiles", "01R1"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body does not contain %q:\n%s", want, m.Body)
		}
	}

	// Seats free up: two people from the queue get them.
	freed := pool("primary", 12, 11, 4)
	d.NotifyRun(t.Context(), Run{RunID: "01R4", Events: []Event{available("01R4", freed, "alice", "bob")}, Pools: []PoolState{freed}})
	flush(t, d)
	msgs = ms.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d mails after seats freed up, want 2", len(msgs))
	}
	if got, want := msgs[1].Header.Get("Subject"), "[seatsync] Pool primary had free seats: 2 people activated from the queue"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if strings.Contains(allLogText(logs), "s3cret-pass") {
		t.Error("the SMTP password is in the log")
	}
}

// TestEmailImplicitTLS: smtp.tls: tls speaks TLS from the first byte.
func TestEmailImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	ms := startMailServer(t, &ca, true, "seatsync", "pw")
	s := emailSender(t, ms, TLSImplicit, &ca, "seatsync", "pw")
	if err := s.Send(t.Context(), failed("01R1")); err != nil {
		t.Fatal(err)
	}
	msgs := ms.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Header.Get("Subject") != "[seatsync] A sync run failed" {
		t.Fatalf("mails %+v, want one run_failed mail over TLS", msgs)
	}
}

// TestEmailUntrustedCertificate: a server whose certificate does not
// verify gets nothing; the failure is logged and the run is unaffected.
func TestEmailUntrustedCertificate(t *testing.T) {
	serverCA, otherCA := newTestCA(t), newTestCA(t)
	ms := startMailServer(t, &serverCA, false, "seatsync", "pw")
	log, logs := observedLogger()
	d := NewDispatcher(openStore(t, t.TempDir()), []Sender{emailSender(t, ms, TLSStartTLS, &otherCA, "seatsync", "pw")},
		log, DispatcherOptions{})
	defer closeDispatcher(t, d)
	d.NotifyRun(t.Context(), Run{RunID: "01R1", Events: []Event{failed("01R1")}, Pools: nil})
	flush(t, d)
	if n := len(ms.Messages()); n != 0 {
		t.Errorf("%d mails accepted over an untrusted certificate", n)
	}
	errs := logs.FilterMessage("send notification").All()
	if len(errs) != 1 {
		t.Fatalf("%d send errors logged, want 1", len(errs))
	}
	if msg := fmt.Sprint(errs[0].ContextMap()["error"]); !strings.Contains(msg, "certificate") {
		t.Errorf("logged error %q does not say it is the certificate", msg)
	}
	// Not marked sent: the next run tries again.
	if eps, err := d.store.Episodes(t.Context()); err != nil || !eps["run_failed"].SentAt.IsZero() {
		t.Errorf("episodes %v (%v): run_failed marked sent", eps, err)
	}
}

// TestEmailNoTLSOnlyLoopback: plain-text SMTP works against a loopback
// test server and is refused for any other host.
func TestEmailNoTLSOnlyLoopback(t *testing.T) {
	ms := startMailServer(t, nil, false, "", "")
	s := emailSender(t, ms, TLSNone, nil, "", "")
	if err := s.Send(t.Context(), refused("01R1")); err != nil {
		t.Fatal(err)
	}
	if n := len(ms.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
	if _, err := NewEmail(EmailConfig{To: []string{"a@example.com"}, From: "b@example.com", Host: "smtp.example.com", TLS: TLSNone}); err == nil {
		t.Error("tls: none accepted for smtp.example.com")
	}
	// starttls is mandatory: a server without STARTTLS gets nothing.
	strict := emailSender(t, ms, TLSStartTLS, nil, "", "")
	if err := strict.Send(t.Context(), refused("01R2")); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("starttls to a server without STARTTLS: %v, want a STARTTLS error", err)
	}
	if n := len(ms.Messages()); n != 1 {
		t.Errorf("%d mails, want still 1", n)
	}
}

// TestEmailServerDownDoesNotBlock: a mail server that accepts connections
// and never answers does not hold up NotifyRun; Close gives up at its
// deadline.
func TestEmailServerDownDoesNotBlock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never greet
		}
	}()
	s, err := NewEmail(EmailConfig{To: []string{"a@example.com"}, From: "b@example.com", Host: "127.0.0.1",
		Port: l.Addr().(*net.TCPAddr).Port, TLS: TLSStartTLS, Timeout: time.Hour, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observedLogger()
	d := NewDispatcher(openStore(t, t.TempDir()), []Sender{s}, log, DispatcherOptions{})
	full := pool("primary", 10, 10, 1)
	for _, run := range []string{"01R1", "01R2", "01R3"} {
		d.NotifyRun(t.Context(), Run{RunID: run, Events: []Event{exhausted(run, full, "a"), failed(run)}, Pools: []PoolState{full}})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); err == nil {
		t.Error("Close with sends stuck returned nil, want the deadline")
	}
	if n := logs.FilterMessage("notification sent").Len(); n != 0 {
		t.Errorf("%d notifications sent to a server that never answers", n)
	}
	// After Close, events are refused without blocking.
	d.NotifyRun(t.Context(), Run{RunID: "01R4", Events: []Event{failed("01R4")}, Pools: nil})
}

// TestMessagePeople: at most MaxPeople names, then a count.
func TestMessagePeople(t *testing.T) {
	var people []string
	for i := range 57 {
		people = append(people, fmt.Sprintf("user%02d", i))
	}
	body := Body(exhausted("01R1", pool("primary", 10, 10, 57), people...))
	if !strings.Contains(body, "user49") || strings.Contains(body, "user50") || !strings.Contains(body, "and 7 more") {
		t.Errorf("body does not list 50 people and then \"and 7 more\":\n%s", body)
	}
	if !strings.Contains(body, "(57)") {
		t.Errorf("body does not give the count of people:\n%s", body)
	}
}
