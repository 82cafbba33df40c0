package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/seatsync/seatsync/config"
)

// SMTP TLS modes (config notify.email.smtp.tls).
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// EmailConfig is what the Email sender needs; cmd fills it from
// config.Email.
type EmailConfig struct {
	To   []string
	From string
	Host string
	// Port defaults to 587, or 465 with TLSImplicit.
	Port int
	// TLS is starttls (the default: the server must offer STARTTLS), tls
	// (TLS from the start) or none (plain text; loopback hosts only).
	TLS      string
	Username string
	// Password is only revealed to the SMTP client.
	Password config.Secret
	// RootCAs verifies the server's certificate; the system roots when nil.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each SMTP command (30s when 0).
	Timeout time.Duration
	Retry   Retry
}

// Email sends one message per event through an SMTP server.
type Email struct {
	cfg  EmailConfig
	tls  *tls.Config
	opts []mail.Option
}

// NewEmail checks cfg and returns the sender.
func NewEmail(cfg EmailConfig) (*Email, error) {
	wrap := func(err error) error { return fmt.Errorf("notify: email via %s: %w", cfg.Host, err) }
	if cfg.Host == "" {
		return nil, wrap(errors.New("no smtp host"))
	}
	if len(cfg.To) == 0 || cfg.From == "" {
		return nil, wrap(errors.New("to and from are required"))
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	cfg.Retry = cfg.Retry.orDefault()
	tlsConf := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(cfg.Timeout), mail.WithTLSConfig(tlsConf)}
	switch cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSNone:
		if !isLoopback(cfg.Host) {
			return nil, wrap(errors.New("smtp.tls: none is only allowed for a loopback server (localhost, 127.0.0.1, ::1)"))
		}
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return nil, wrap(fmt.Errorf("smtp.tls %q is not starttls, tls or none", cfg.TLS))
	}
	if cfg.Username != "" {
		// The first of these the server offers. PLAIN and LOGIN refuse a
		// connection without TLS unless the server is on loopback.
		opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
			mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password.Reveal()))
	}
	if _, err := mail.NewClient(cfg.Host, opts...); err != nil {
		return nil, wrap(err)
	}
	return &Email{cfg: cfg, tls: tlsConf, opts: opts}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name is "email via HOST:PORT".
func (m *Email) Name() string { return fmt.Sprintf("email via %s:%d", m.cfg.Host, m.cfg.Port) }

// Message builds the mail for e.
func (m *Email) Message(e Event) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.cfg.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	msg.Subject(Subject(e))
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader("X-Seatsync-Event", string(e.Kind))
	msg.SetBodyString(mail.TypeTextPlain, Body(e))
	return msg, nil
}

// Send mails e, retrying with backoff when the server cannot be reached
// or answers with a temporary (4xx) error. A certificate that does not
// verify is not retried.
func (m *Email) Send(ctx context.Context, e Event) error {
	msg, err := m.Message(e)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name(), err)
	}
	return m.cfg.Retry.do(ctx, func(ctx context.Context) error {
		// go-mail reads the greeting and replies without watching ctx;
		// closing the connection when ctx ends unblocks it.
		var stops []func() bool
		defer func() {
			for _, stop := range stops {
				stop()
			}
		}()
		dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			var err error
			nd := &net.Dialer{}
			if m.cfg.TLS == TLSImplicit {
				conn, err = (&tls.Dialer{NetDialer: nd, Config: m.tls.Clone()}).DialContext(dctx, network, addr)
			} else {
				conn, err = nd.DialContext(dctx, network, addr)
			}
			if err != nil {
				return nil, err
			}
			stops = append(stops, context.AfterFunc(ctx, func() { conn.Close() }))
			return conn, nil
		}
		c, err := mail.NewClient(m.cfg.Host, append(m.opts, mail.WithDialContextFunc(dial))...)
		if err != nil {
			return fmt.Errorf("%s: %w (%w)", m.Name(), err, errPermanent)
		}
		if err := c.DialAndSendWithContext(ctx, msg); err != nil {
			err = fmt.Errorf("%s: %w", m.Name(), err)
			if !retryableMailError(err) {
				return fmt.Errorf("%w (%w)", err, errPermanent)
			}
			return err
		}
		return nil
	})
}

// retryableMailError says whether another try might succeed.
func retryableMailError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return false
	}
	var sendErr *mail.SendError
	if errors.As(err, &sendErr) {
		return sendErr.IsTemp()
	}
	return true // a network error, a dropped connection
}
