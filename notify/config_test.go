package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/seatsync/seatsync/config"
)

func TestSenders(t *testing.T) {
	cfg := config.Notify{
		Email: &config.Email{To: []string{"it@example.com"}, From: "seatsync@example.com",
			SMTP: config.SMTP{Host: "smtp.example.com", TLS: "tls", Username: "u", Password: config.NewSecret("pw")}},
		Webhooks: []config.Webhook{
			{URL: "https://hooks.slack.com/services/T000/B000/secretTOKEN", Format: "slack"},
			{URL: "https://hooks.example.com/x", Timeout: config.Duration{Duration: time.Second}},
		},
	}
	senders, err := Senders(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range senders {
		names = append(names, s.Name())
	}
	if got, want := strings.Join(names, ", "), "email via smtp.example.com:465, webhook hooks.slack.com, webhook hooks.example.com"; got != want {
		t.Errorf("senders %q, want %q", got, want)
	}
	if w := senders[1].(*Webhook); w.client.Timeout != DefaultWebhookTimeout || w.format != FormatSlack {
		t.Errorf("slack webhook: timeout %s, format %s", w.client.Timeout, w.format)
	}
	if w := senders[2].(*Webhook); w.client.Timeout != time.Second || w.format != FormatJSON {
		t.Errorf("json webhook: timeout %s, format %s", w.client.Timeout, w.format)
	}
	cfg.Email.SMTP.TLS = "none"
	if _, err := Senders(cfg); err == nil {
		t.Error("smtp.tls: none accepted for a remote server")
	}
}
