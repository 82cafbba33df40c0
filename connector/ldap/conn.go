package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/internal/smallfile"
)

var (
	// ErrCertificate marks a server certificate that could not be verified
	// (an unknown CA, a wrong host name, an expired certificate). It is
	// never retried.
	ErrCertificate = errors.New("server certificate not trusted")
	// ErrCredentials marks a bind the server refused (a wrong bind_dn or
	// password, a locked service account). It is never retried.
	ErrCredentials = errors.New("bind refused: wrong bind_dn or bind_password")
	// ErrUnavailable marks a failure to reach any of the configured servers;
	// it is transient and was retried before it was returned.
	ErrUnavailable = errors.New("no LDAP server reachable")
)

// conn is one bound connection and the URL it reached.
type conn struct {
	*goldap.Conn
	url string
	// wire, when set, carries the paged searches (see wire).
	wire *wire
	// stop undoes the context watch that closes the connection when the
	// pull's context ends.
	stop func() bool
}

func (c *conn) close() {
	c.wire.close()
	c.stop()
	_ = c.Conn.Close()
}

// maxCAFile bounds tls.ca_file: a whole system bundle is some 200 KiB.
const maxCAFile = 1 << 20

// tlsConfig builds the TLS settings: TLS 1.2 at least, verification always
// on, against ca_file when it is set and the system roots otherwise.
func (s *source) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if s.serverName != "" {
		tc.ServerName = s.serverName
	}
	if s.caFile != "" {
		pem, err := smallfile.Read(s.caFile, maxCAFile, "a CA file")
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", s.caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// connect returns a bound connection to the first URL that answers. When no
// server answers it waits and tries the whole list again, s.retries times;
// certificate and credential errors end it at once. The connection is
// closed when ctx ends, which ends every request on it.
func (s *source) connect(ctx context.Context) (*conn, error) {
	wait := s.backoff
	var errs []error
	for round := 0; ; round++ {
		for _, u := range s.urls {
			c, err := s.dial(ctx, u)
			if err == nil {
				return c, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("connect %s: %w", u, ctx.Err())
			}
			if errors.Is(err, ErrCertificate) || errors.Is(err, ErrCredentials) {
				return nil, err
			}
			s.log.Warn("ldap server unreachable", zap.String("url", u), zap.Error(err))
			errs = append(errs, err)
		}
		if round >= s.retries {
			return nil, fmt.Errorf("%w (tried %d times): %w", ErrUnavailable, round+1, errors.Join(errs...))
		}
		errs = errs[:0]
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect: %w", ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// dial connects to one URL, sets up TLS and binds.
func (s *source) dial(ctx context.Context, raw string) (*conn, error) {
	nc, tc, isTLS, err := s.dialNet(ctx, raw)
	if err != nil {
		return nil, err
	}
	// No go-ldap timeout (SetTimeout): when a response waits longer than
	// that for its reader, go-ldap drops it without an error, which could
	// lose an entry. Timeouts are contexts here: the bind's below, each
	// page's in search.
	lc := goldap.NewConn(nc, isTLS)
	lc.Start()
	c := &conn{Conn: lc, url: raw}
	c.stop = context.AfterFunc(ctx, func() { _ = lc.Close() })
	// StartTLS and Bind take no context: the connection is closed if they
	// take longer than timeout.
	octx, ocancel := context.WithTimeout(ctx, s.timeout)
	defer ocancel()
	stopOp := context.AfterFunc(octx, func() { _ = lc.Close() })
	defer stopOp()
	fail := func(stage string, err error) (*conn, error) {
		c.close()
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case octx.Err() != nil:
			err = fmt.Errorf("no answer within timeout %s: %w", s.timeout, octx.Err())
		}
		return nil, fmt.Errorf("connect %s: %s: %w", raw, stage, err)
	}
	if s.tlsMode == "starttls" {
		if err := lc.StartTLS(tc); err != nil {
			return fail("starttls", tlsError(err))
		}
	}
	if s.bindDN != "" {
		if err := lc.Bind(s.bindDN, s.password.Reveal()); err != nil {
			return fail("bind as "+s.bindDN, bindError(err))
		}
	}
	if !stopOp() {
		return fail("bind", errors.New("connection closed"))
	}
	return c, nil
}

// dialNet opens the TCP connection to one URL, with the TLS handshake
// done for ldaps. tc is the TLS configuration for StartTLS (nil for
// tls.mode none).
func (s *source) dialNet(ctx context.Context, raw string) (nc net.Conn, tc *tls.Config, isTLS bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, false, fmt.Errorf("connect %s: %w", raw, err)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	dialTimeout := min(s.timeout, maxDialTimeout)
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err = d.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, false, fmt.Errorf("connect %s: %w", raw, err)
	}
	if s.tlsMode != "none" {
		if tc, err = s.tlsConfig(host); err != nil {
			nc.Close()
			return nil, nil, false, err
		}
	}
	if strings.EqualFold(u.Scheme, "ldaps") {
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, nil, false, fmt.Errorf("connect %s: %w", raw, tlsError(err))
		}
		return tlsConn, tc, true, nil
	}
	return nc, tc, false, nil
}

// bindError explains a refused bind; wrong credentials are marked
// ErrCredentials, which is never retried.
func bindError(err error) error {
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials, goldap.LDAPResultInappropriateAuthentication) {
		return fmt.Errorf("%w (%w)", ErrCredentials, err)
	}
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultConfidentialityRequired, goldap.LDAPResultStrongAuthRequired) {
		return fmt.Errorf("the server requires an encrypted connection for this bind (use tls.mode ldaps or starttls): %w", err)
	}
	return err
}

// tlsError marks certificate verification failures with ErrCertificate.
func tlsError(err error) error {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return fmt.Errorf("%w (check tls.ca_file and tls.server_name): %w", ErrCertificate, err)
	}
	// go-ldap's StartTLS flattens the handshake error into text.
	if msg := err.Error(); strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate") {
		return fmt.Errorf("%w (check tls.ca_file and tls.server_name): %w", ErrCertificate, err)
	}
	return err
}
