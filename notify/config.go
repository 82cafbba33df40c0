package notify

import (
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
)

// Senders builds the senders of cfg: one for email when configured, one
// per webhook. Errors name the channel but never a URL or a password.
func Senders(cfg config.Notify) ([]Sender, error) {
	var out []Sender
	if e := cfg.Email; e != nil {
		s, err := NewEmail(EmailConfig{
			To: e.To, From: e.From, Host: e.SMTP.Host, Port: e.SMTP.Port, TLS: e.SMTP.TLS,
			Username: e.SMTP.Username, Password: e.SMTP.Password,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	for _, w := range cfg.Webhooks {
		s, err := NewWebhook(w.URL, w.Format, w.Timeout.Duration, Retry{}, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// FromConfig returns the Dispatcher for cfg over st, with its senders.
// With no email and no webhook it still tracks episodes and logs every
// event. Close it when done.
func FromConfig(cfg config.Notify, st EpisodeStore, log *zap.Logger) (*Dispatcher, error) {
	senders, err := Senders(cfg)
	if err != nil {
		return nil, err
	}
	return NewDispatcher(st, senders, log.With(zap.String("component", "notify")), DispatcherOptions{}), nil
}
