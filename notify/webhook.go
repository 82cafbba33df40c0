package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Webhook formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// DefaultWebhookTimeout bounds one webhook request when none is configured.
const DefaultWebhookTimeout = 10 * time.Second

// Webhook POSTs events to one URL. The URL is treated as a secret (a Slack
// URL holds a token): only its host appears in logs and errors.
type Webhook struct {
	url    string
	host   string
	format string
	client *http.Client
	retry  Retry
	now    func() time.Time
}

// NewWebhook returns the sender for rawURL in format (json when ""), each
// request bounded by timeout (DefaultWebhookTimeout when 0). client may be
// nil (a default client).
func NewWebhook(rawURL, format string, timeout time.Duration, retry Retry, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("notify: webhook: the URL does not parse") // the error would quote the URL
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("notify: webhook %s: the URL must be http:// or https:// with a host", u.Host)
	}
	if format == "" {
		format = FormatJSON
	}
	if format != FormatJSON && format != FormatSlack {
		return nil, fmt.Errorf("notify: webhook %s: format %q is not json or slack", u.Host, format)
	}
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	if client == nil {
		client = &http.Client{}
	}
	c := *client
	c.Timeout = timeout
	return &Webhook{url: rawURL, host: u.Host, format: format, client: &c, retry: retry.orDefault(), now: time.Now}, nil
}

// Name is "webhook HOST".
func (w *Webhook) Name() string { return "webhook " + w.host }

// Send POSTs e, retrying network errors, 5xx and 429 with backoff. Any
// other 4xx is not retried.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := w.payload(e)
	if err != nil {
		return fmt.Errorf("webhook %s: encode: %w", w.host, err)
	}
	return w.retry.do(ctx, func(ctx context.Context) error {
		return w.post(ctx, body)
	})
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.host, errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "seatsync")
	resp, err := w.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the URL, token and all
		}
		return fmt.Errorf("webhook %s: post: %w", w.host, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook %s: %s: %s", w.host, resp.Status, strings.TrimSpace(string(snippet)))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return err
	}
	return fmt.Errorf("%w (%w)", err, errPermanent)
}

// JSONPayload is the body of a json webhook.
type JSONPayload struct {
	Source  string `json:"source"` // "seatsync"
	Version int    `json:"version"`
	SentAt  string `json:"sent_at"`
	Subject string `json:"subject"`
	Event   Event  `json:"event"`
	// PeopleCount is the number of people affected; Event.People lists
	// at most MaxPeople of them.
	PeopleCount int `json:"people_count"`
}

func (w *Webhook) payload(e Event) ([]byte, error) {
	if w.format == FormatSlack {
		return json.Marshal(SlackMessage(e))
	}
	n := len(e.People)
	e.People = Cap(e.People, MaxPeople)
	return json.Marshal(JSONPayload{Source: "seatsync", Version: 1, SentAt: w.now().UTC().Format(time.RFC3339),
		Subject: Subject(e), Event: e, PeopleCount: n})
}

// slackTextLimit is Slack's limit on a section block's text.
const slackTextLimit = 3000

// SlackMessage is the Slack incoming-webhook payload for e: a text
// fallback (shown in notifications) and blocks (a header, the message
// body, the run id).
func SlackMessage(e Event) map[string]any {
	subject := strings.TrimPrefix(Subject(e), "[seatsync] ")
	body := Body(e)
	if max := slackTextLimit - 10; len(body) > max { // room for the ``` fences
		body = strings.ToValidUTF8(body[:max], "") + "..."
	}
	header := subject
	if len(header) > 150 {
		header = strings.ToValidUTF8(header[:147], "") + "..."
	}
	return map[string]any{
		"text": "seatsync: " + subject,
		"blocks": []any{
			map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": header}},
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "```" + strings.TrimRight(body, "\n") + "```"}},
		},
	}
}
