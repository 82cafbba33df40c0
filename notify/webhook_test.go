package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiver is an httptest webhook receiver that answers with the given
// statuses in turn (the last one from then on) and keeps every body.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := r.statuses[min(len(r.bodies), len(r.statuses)-1)]
		if req.Method == http.MethodPost && req.Header.Get("Content-Type") == "application/json" {
			r.bodies = append(r.bodies, body)
		} else {
			status = http.StatusBadRequest
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

const secretPath = "/services/T000/B000/XXXXsecretTOKEN"

func webhook(t *testing.T, r *receiver, format string) *Webhook {
	t.Helper()
	w, err := NewWebhook(r.URL+secretPath, format, 5*time.Second, fastRetry, r.Client())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWebhookRetries: 5xx and 429 are retried with backoff, other 4xx
// are not, and the URL's token is never logged.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantTries int
		wantSent  bool
	}{
		{"fails twice then succeeds", []int{500, 500, 200}, 3, true},
		{"rate limited then succeeds", []int{429, 204}, 2, true},
		{"always 404: not retried", []int{404}, 1, false},
		{"always 503: gives up after the attempts", []int{503}, fastRetry.Attempts, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, tc.statuses...)
			log, logs := observedLogger()
			d := NewDispatcher(openStore(t, t.TempDir()), []Sender{webhook(t, r, FormatJSON)}, log, DispatcherOptions{})
			defer closeDispatcher(t, d)
			d.NotifyRun(t.Context(), Run{RunID: "01R1", Events: []Event{failed("01R1")}, Pools: nil})
			flush(t, d)
			if n := len(r.requests()); n != tc.wantTries {
				t.Errorf("%d requests, want %d", n, tc.wantTries)
			}
			sent := logs.FilterMessage("notification sent").Len() == 1
			if sent != tc.wantSent {
				t.Errorf("sent %v, want %v", sent, tc.wantSent)
			}
			text := allLogText(logs)
			if strings.Contains(text, "secretTOKEN") || strings.Contains(text, "/services/") {
				t.Errorf("the webhook URL's path is in the log:\n%s", text)
			}
			if !strings.Contains(text, "webhook "+strings.TrimPrefix(r.URL, "http://")) {
				t.Errorf("the log does not name the webhook's host:\n%s", text)
			}
		})
	}
}

// TestWebhookUnreachable: a network error is retried, then logged without
// the URL.
func TestWebhookUnreachable(t *testing.T) {
	r := newReceiver(t, 200)
	w := webhook(t, r, FormatSlack)
	r.Close()
	err := w.Send(t.Context(), failed("01R1"))
	if err == nil {
		t.Fatal("send to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secretTOKEN") {
		t.Errorf("error %q holds the URL's token", err)
	}
}

func TestWebhookSlackPayload(t *testing.T) {
	r := newReceiver(t, 200)
	full := pool("primary", 10, 10, 5)
	if err := webhook(t, r, FormatSlack).Send(t.Context(), exhausted("01R1", full, "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.requests()[0], &got); err != nil {
		t.Fatal(err)
	}
	if want := "seatsync: Pool primary is full: 5 people queued"; got.Text != want {
		t.Errorf("text %q, want %q", got.Text, want)
	}
	var types []string
	for _, b := range got.Blocks {
		types = append(types, b.Type+"/"+b.Text.Type)
	}
	if diff := cmp.Diff([]string{"header/plain_text", "section/mrkdwn"}, types); diff != "" {
		t.Fatalf("blocks (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Limit:     10", "Queued:    5", "alice", "bob", "buy more seats"} {
		if !strings.Contains(got.Blocks[1].Text.Text, want) {
			t.Errorf("section does not contain %q:\n%s", want, got.Blocks[1].Text.Text)
		}
	}
}

func TestWebhookJSONPayload(t *testing.T) {
	r := newReceiver(t, 200)
	var people []string
	for range 60 {
		people = append(people, "someone")
	}
	full := pool("primary", 10, 10, 60)
	if err := webhook(t, r, FormatJSON).Send(t.Context(), exhausted("01R1", full, people...)); err != nil {
		t.Fatal(err)
	}
	var got JSONPayload
	if err := json.Unmarshal(r.requests()[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Source != "seatsync" || got.Version != 1 || got.SentAt == "" || got.PeopleCount != 60 ||
		got.Subject != "[seatsync] Pool primary is full: 60 people queued" {
		t.Errorf("envelope %+v", got)
	}
	want := exhausted("01R1", full, people...)
	want.People = people[:MaxPeople]
	if diff := cmp.Diff(want, got.Event); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

func TestNewWebhookErrorsHideURL(t *testing.T) {
	for _, u := range []string{"ftp://hooks.example.com/secretTOKEN", "https://hooks.example.com/secretTOKEN\x7f"} {
		_, err := NewWebhook(u, "", 0, Retry{}, nil)
		if err == nil {
			t.Errorf("NewWebhook(%q) succeeded", u)
		} else if strings.Contains(err.Error(), "secretTOKEN") {
			t.Errorf("error %q holds the URL's token", err)
		}
	}
	if _, err := NewWebhook("https://hooks.example.com/x", "xml", 0, Retry{}, nil); err == nil {
		t.Error("format xml accepted")
	}
}

// TestWebhookTimeout: a receiver that never answers is given up on after
// the configured timeout (and retried like any network error).
func TestWebhookTimeout(t *testing.T) {
	var mu sync.Mutex
	tries := 0
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body) // so the server notices the client hanging up
		mu.Lock()
		tries++
		mu.Unlock()
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	w, err := NewWebhook(srv.URL+secretPath, FormatJSON, 50*time.Millisecond, fastRetry, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(t.Context(), failed("01R1")); err == nil {
		t.Fatal("send to a receiver that never answers succeeded")
	} else if strings.Contains(err.Error(), "secretTOKEN") {
		t.Errorf("error %q holds the URL's token", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries != fastRetry.Attempts {
		t.Errorf("%d tries, want %d", tries, fastRetry.Attempts)
	}
}
