package licensing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A vendor licence file (SPEC section 12) sets pool limits in place of
// numbers in the configuration. It is YAML, signed (when the configuration
// names a public key) with a detached ed25519 signature over its exact
// bytes, as `openssl pkeyutl -sign -rawin` makes one.

// Errors of a licence that is refused, told apart with errors.Is.
var (
	// ErrUnsigned is a licence with no signature beside it while a public
	// key is configured.
	ErrUnsigned = errors.New("the licence has no signature")
	// ErrBadSignature is a signature that does not match the licence's
	// bytes and the public key: the file was changed after it was signed,
	// or it was signed with another key.
	ErrBadSignature = errors.New("the licence's signature does not match (the file was changed after it was signed, or it was signed with another key)")
)

// Quantity is a licence limit: a number of seats or unlimited.
type Quantity struct {
	N         int
	Unlimited bool
}

// String returns "unlimited" or the number.
func (q Quantity) String() string {
	if q.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(q.N)
}

// License is a parsed vendor licence. Its signature is checked by Verify,
// not here.
type License struct {
	RegisteredTo string
	// Hosts are host:port patterns ("*.example.com:443") of the
	// applications the licence is for; empty means any.
	Hosts []string
	// Issued is the day the licence was issued (UTC midnight).
	Issued time.Time
	// Expires is the last day the licence is valid (UTC midnight); zero
	// for a licence that never expires.
	Expires time.Time

	limits map[string]Quantity
	flags  map[string]bool
	keys   []string // limits' keys in the file's order
}

// licenseFile is the file's shape, for yaml.v3.
type licenseFile struct {
	RegisteredTo string               `yaml:"registered_to"`
	Hosts        []string             `yaml:"hosts"`
	Issued       string               `yaml:"issued"`
	Expires      string               `yaml:"expires"`
	Limits       yaml.Node            `yaml:"limits"`
	Extra        map[string]yaml.Node `yaml:",inline"`
}

// ParseLicense reads a licence file. Keys other than registered_to, hosts,
// issued, expires and limits are ignored, so that a vendor may add some.
// A value of limits is a number, unlimited, or a yes/no (true/false) flag.
func ParseLicense(data []byte) (*License, error) {
	var f licenseFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("the licence is not valid YAML: %w", err)
	}
	l := &License{RegisteredTo: strings.TrimSpace(f.RegisteredTo), Hosts: f.Hosts,
		limits: map[string]Quantity{}, flags: map[string]bool{}}
	var err error
	if strings.TrimSpace(f.Issued) == "" {
		return nil, errors.New("the licence has no issued date")
	}
	if l.Issued, err = parseDay(f.Issued); err != nil {
		return nil, fmt.Errorf("the licence's issued: %w", err)
	}
	switch exp := strings.TrimSpace(f.Expires); {
	case exp == "":
		return nil, errors.New("the licence has no expires (a date, or never)")
	case strings.EqualFold(exp, "never"):
	default:
		if l.Expires, err = parseDay(exp); err != nil {
			return nil, fmt.Errorf("the licence's expires: %w", err)
		}
	}
	for i, h := range l.Hosts {
		if _, _, err := splitPattern(h); err != nil {
			return nil, fmt.Errorf("the licence's hosts[%d]: %w", i, err)
		}
	}
	if f.Limits.Kind == 0 {
		return nil, errors.New("the licence has no limits")
	}
	if f.Limits.Kind != yaml.MappingNode {
		return nil, errors.New("the licence's limits is not a mapping of names to numbers")
	}
	for i := 0; i+1 < len(f.Limits.Content); i += 2 {
		k, v := f.Limits.Content[i], f.Limits.Content[i+1]
		key := k.Value
		if _, dup := l.limits[key]; dup {
			return nil, fmt.Errorf("the licence's limits has %s twice", key)
		}
		if _, dup := l.flags[key]; dup {
			return nil, fmt.Errorf("the licence's limits has %s twice", key)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("the licence's limits.%s is not a number, unlimited or yes/no", key)
		}
		val := strings.TrimSpace(v.Value)
		switch strings.ToLower(val) {
		case "unlimited":
			l.limits[key] = Quantity{Unlimited: true}
		case "yes", "true":
			l.flags[key] = true
		case "no", "false":
			l.flags[key] = false
		default:
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("the licence's limits.%s: %q is not a number (0 or more), unlimited or yes/no", key, val)
			}
			l.limits[key] = Quantity{N: n}
		}
		l.keys = append(l.keys, key)
	}
	return l, nil
}

// parseDay reads 2026-01-15 (or an RFC 3339 time, taken at its UTC day).
func parseDay(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date such as 2027-01-15", s)
}

// Limit returns the limit called key, and whether the licence has one.
// A flag is not a limit.
func (l *License) Limit(key string) (Quantity, bool) {
	q, ok := l.limits[key]
	return q, ok
}

// Flag returns the yes/no flag called name, and whether the licence has
// one (CRM_ALLOWED: yes).
func (l *License) Flag(name string) (value, ok bool) {
	value, ok = l.flags[name]
	return value, ok
}

// IsFlag reports whether key is a yes/no flag of the licence.
func (l *License) IsFlag(key string) bool {
	_, ok := l.flags[key]
	return ok
}

// Keys lists the licence's limits and flags in the file's order.
func (l *License) Keys() []string { return slices.Clone(l.keys) }

// LimitKeys lists the keys of the licence's limits (not its flags), in
// the file's order.
func (l *License) LimitKeys() []string {
	var out []string
	for _, k := range l.keys {
		if _, ok := l.limits[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Never reports whether the licence never expires.
func (l *License) Never() bool { return l.Expires.IsZero() }

// Lapses is the instant the licence stops being valid: the start (UTC) of
// the day after Expires, since the licence is valid through the whole of
// its expires date. Zero for a licence that never expires.
func (l *License) Lapses() time.Time {
	if l.Never() {
		return time.Time{}
	}
	return l.Expires.AddDate(0, 0, 1)
}

// Expired reports whether the licence has expired at now.
func (l *License) Expired(now time.Time) bool {
	return !l.Never() && !now.Before(l.Lapses())
}

// Left is how long the licence is still valid at now (0 once expired); a
// licence that never expires has no end, reported as -1.
func (l *License) Left(now time.Time) time.Duration {
	if l.Never() {
		return -1
	}
	return max(0, l.Lapses().Sub(now))
}

// ExpiresString is the expires date as the file writes it, or "never".
func (l *License) ExpiresString() string {
	if l.Never() {
		return "never"
	}
	return l.Expires.Format(time.DateOnly)
}

// Covers reports whether the licence is for the application at rawURL:
// its host and port (443 for https, 80 for http, when the URL has none)
// match one of Hosts. A pattern "*.example.com:443" matches any host
// under example.com (app.example.com, a.b.example.com) but not
// example.com itself; a pattern without a port matches any port. Hosts
// are compared ignoring case. A licence with no hosts covers every URL.
func (l *License) Covers(rawURL string) bool {
	if len(l.Hosts) == 0 {
		return true
	}
	host, port, ok := hostPort(rawURL)
	if !ok {
		return false
	}
	for _, h := range l.Hosts {
		ph, pp, err := splitPattern(h)
		if err != nil || (pp != "" && pp != port) {
			continue
		}
		if suffix, wild := strings.CutPrefix(ph, "*."); wild {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == ph {
			return true
		}
	}
	return false
}

// hostPort is a URL's lowercased host and its port.
func hostPort(rawURL string) (host, port string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return "", "", false
	}
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return host, port, true
}

// splitPattern splits "*.example.com:443" into its lowercased host and
// port ("" for any port).
func splitPattern(p string) (host, port string, err error) {
	p = strings.ToLower(strings.TrimSpace(p))
	if p == "" {
		return "", "", errors.New("an empty host pattern")
	}
	host = p
	if h, pt, err := net.SplitHostPort(p); err == nil {
		if n, err := strconv.Atoi(pt); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%q: the port must be a number from 1 to 65535", p)
		}
		host, port = h, pt
	}
	if rest, wild := strings.CutPrefix(host, "*."); wild {
		if rest == "" || strings.Contains(rest, "*") {
			return "", "", fmt.Errorf("%q is not a host pattern such as *.example.com:443", p)
		}
	} else if strings.Contains(host, "*") {
		return "", "", fmt.Errorf("%q: a wildcard is only allowed as a leading *. (such as *.example.com:443)", p)
	}
	return host, port, nil
}

// Signature is the detached signature of a licence: the base64 of the
// ed25519 signature over the file's exact bytes (what `openssl pkeyutl
// -sign -rawin ... | base64 -w0` writes). Spaces and line breaks around
// or inside it are ignored.
func decodeSignature(sig []byte) ([]byte, error) {
	clean := bytes.Join(bytes.Fields(sig), nil)
	if len(clean) == 0 {
		return nil, ErrUnsigned
	}
	raw, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("the licence's signature is not base64: %w", err)
	}
	if len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("the licence's signature is %d bytes, not the %d of an ed25519 signature", len(raw), ed25519.SignatureSize)
	}
	return raw, nil
}

// Verify checks sig (the .sig file's contents) against data (the licence
// file's exact bytes) and pub.
func Verify(data, sig []byte, pub ed25519.PublicKey) error {
	raw, err := decodeSignature(sig)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, data, raw) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the .sig file's contents for data: the base64 of its
// ed25519 signature with key, and a newline.
func Sign(data []byte, key ed25519.PrivateKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(key, data)) + "\n")
}

// ParsePublicKey reads a PEM ed25519 public key, as `openssl pkey -pubout`
// writes it (SubjectPublicKeyInfo, "PUBLIC KEY").
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file (it should start with -----BEGIN PUBLIC KEY-----)")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("a PEM %q, not a PUBLIC KEY (make one with: openssl pkey -in vendor.pem -pubout)", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T public key, not ed25519", k)
	}
	return pub, nil
}

// ParsePrivateKey reads a PEM PKCS#8 ed25519 private key, as `openssl
// genpkey -algorithm ed25519` writes it ("PRIVATE KEY").
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file (it should start with -----BEGIN PRIVATE KEY-----)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("a PEM %q, not a PKCS#8 PRIVATE KEY (make one with: openssl genpkey -algorithm ed25519)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T private key, not ed25519", k)
	}
	return priv, nil
}
