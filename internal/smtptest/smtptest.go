// Package smtptest runs a real SMTP server (emersion/go-smtp) on a free
// loopback port for tests, and keeps every message it accepts.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// TLS, when set, is offered with STARTTLS, or from the first byte when
	// Implicit is set.
	TLS      *tls.Config
	Implicit bool
	// User and Password, when User is set, are required (PLAIN login).
	User, Password string
}

// Server is a running SMTP server.
type Server struct {
	Addr string // 127.0.0.1:PORT
	Host string // 127.0.0.1
	Port int

	opt  Options
	mu   sync.Mutex
	msgs []Message
}

// Message is one accepted message.
type Message struct {
	From   string
	To     []string
	Authed string // the username that logged in, "" if none
	TLS    bool
	Header mail.Header
	Body   string // decoded from quoted-printable when so encoded
}

// Start starts a server; it stops when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	s := &Server{opt: opt}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = nopLogger{}
	srv.TLSConfig = opt.TLS
	var l net.Listener
	var err error
	if opt.TLS != nil && opt.Implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", opt.TLS)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.Host = "127.0.0.1"
	s.Port = l.Addr().(*net.TCPAddr).Port
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return s
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed string
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opt.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.opt.User || pass != ss.s.opt.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opt.User != "" && ss.authed == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, To: ss.to, Authed: ss.authed, TLS: isTLS,
		Header: m.Header, Body: decodeBody(m.Header, body)})
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// decodeBody undoes quoted-printable, which go-mail uses for text bodies.
func decodeBody(h mail.Header, body []byte) string {
	if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err == nil {
			return string(b)
		}
	}
	return string(body)
}
