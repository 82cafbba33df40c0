// Package licensefile finds the vendor licence in force: the licence
// file named by licensing.license_file (fetched first from
// licensing.license_url when one is set), checked against
// licensing.public_key_file, or, when that file is refused, the last valid
// licence, which is remembered in the store.
//
// The licence's format and signature are package licensing's; this
// package does the reading, fetching and remembering.
package licensefile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/smallfile"
	"github.com/seatsync/seatsync/licensing"
)

const (
	// StoreKey is the store value that holds the last valid licence.
	StoreKey = "license"
	// MaxFileBytes is the largest licence file read or fetched.
	MaxFileBytes = 1 << 20 // 1 MiB
	// MaxSigBytes is the largest signature file read or fetched.
	MaxSigBytes = 4 << 10 // 4 KiB
	// FetchTimeout bounds the fetch of license_url (file and signature).
	FetchTimeout = 30 * time.Second
	// SigSuffix is added to the licence's name (or URL) for its signature.
	SigSuffix = ".sig"
)

// Memory is where the last valid licence is kept between runs; store.Store
// has it.
type Memory interface {
	Value(ctx context.Context, key string) (string, time.Time, error)
	SetValue(ctx context.Context, key, value string) error
}

// InForce is the licence in force and how it came to be.
type InForce struct {
	// License is the licence in force; nil when there is none (no valid
	// licence was ever seen) or none is configured.
	License *licensing.License
	// Data and Sig are its file's exact bytes and its signature file.
	Data, Sig []byte
	// From is where it was read: the licence file's path, license_url,
	// or, when Remembered, where it was read when it was remembered.
	From string
	// Remembered says the licence is the last valid one, from the store,
	// because the file was refused; RememberedAt is when it was kept.
	Remembered   bool
	RememberedAt time.Time
	// Refused is why the licence file (or the one license_url gave) was
	// refused; nil when it verified.
	Refused error
	// FetchFailed is why license_url could not be fetched; the file on
	// disk was used instead.
	FetchFailed error
	// Signed says the licence's signature was checked (a public key is
	// configured).
	Signed bool
}

// Configured reports whether the configuration names a licence file.
func (f *InForce) Configured() bool { return f != nil && (f.License != nil || f.Refused != nil) }

// Loader reads the licence in force.
type Loader struct {
	Config config.Licensing
	// Memory keeps the last valid licence; nil reads nothing and keeps
	// nothing.
	Memory Memory
	// Keep remembers a licence that verified, and writes one fetched from
	// license_url to license_file. A sync keeps; plan, validate and
	// `license show` do not.
	Keep bool
	// Client fetches license_url; nil builds one from licensing.license_tls.
	Client *http.Client
	Log    *zap.Logger
}

// remembered is the store value.
type remembered struct {
	Data string `json:"data"` // base64 of the file's bytes
	Sig  string `json:"sig,omitempty"`
	From string `json:"from"`
}

// Load returns the licence in force. Its error is only for a store that
// cannot be read: a licence that is refused is InForce.Refused.
func (l *Loader) Load(ctx context.Context) (*InForce, error) {
	c := l.Config
	if c.LicenseFile == "" {
		return &InForce{}, nil
	}
	log := l.Log
	if log == nil {
		log = zap.NewNop()
	}
	var pub ed25519.PublicKey
	var keyErr error
	if c.PublicKeyFile != "" {
		pub, keyErr = ReadPublicKey(c.PublicKeyFile)
	}
	signed := c.PublicKeyFile != ""

	var got *InForce
	var refused, fetchFailed error
	if c.LicenseURL != "" {
		data, sig, err := l.fetch(ctx, signed)
		switch {
		case err != nil:
			fetchFailed = err
			log.Warn("licence: fetching licensing.license_url failed; the licence file stays as it is", zap.String("url", c.LicenseURL), zap.Error(err))
		default:
			lic, err := check(data, sig, pub, keyErr, signed)
			if err != nil {
				refused = fmt.Errorf("the licence from %s was refused: %w", c.LicenseURL, err)
				break
			}
			got = &InForce{License: lic, Data: data, Sig: sig, From: c.LicenseURL, Signed: signed}
			if l.Keep {
				if err := l.write(data, sig, signed); err != nil {
					log.Warn("licence: the licence fetched from licensing.license_url verified but could not be written to licensing.license_file; it is remembered in the store",
						zap.String("url", c.LicenseURL), zap.Error(err))
				}
			}
		}
	}
	if got == nil {
		data, sig, err := readFiles(c.LicenseFile, signed)
		var lic *licensing.License
		if err == nil {
			lic, err = check(data, sig, pub, keyErr, signed)
		}
		switch {
		case err != nil && refused == nil:
			refused = fmt.Errorf("the licence %s was refused: %w", c.LicenseFile, err)
		case err == nil:
			got = &InForce{License: lic, Data: data, Sig: sig, From: c.LicenseFile, Signed: signed}
		}
	}
	if got != nil {
		got.Refused, got.FetchFailed = refused, fetchFailed
		if l.Keep && l.Memory != nil {
			if err := l.remember(ctx, got); err != nil {
				return nil, err
			}
		}
		return got, nil
	}
	got, err := l.recall(ctx, pub, keyErr, signed)
	if err != nil {
		return nil, err
	}
	got.Refused, got.FetchFailed = refused, fetchFailed
	return got, nil
}

// check verifies and parses a licence. With a public key configured but
// unreadable, nothing verifies.
func check(data, sig []byte, pub ed25519.PublicKey, keyErr error, signed bool) (*licensing.License, error) {
	if signed {
		if keyErr != nil {
			return nil, keyErr
		}
		if err := licensing.Verify(data, sig, pub); err != nil {
			return nil, err
		}
	}
	return licensing.ParseLicense(data)
}

// ReadPublicKey reads licensing.public_key_file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := smallfile.Read(path, MaxSigBytes, "a public key")
	if err != nil {
		return nil, fmt.Errorf("licensing.public_key_file: %w", err)
	}
	pub, err := licensing.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("licensing.public_key_file %s: %w", path, err)
	}
	return pub, nil
}

// readFiles reads a licence file and, when signed, its signature.
func readFiles(path string, signed bool) (data, sig []byte, err error) {
	data, err = smallfile.Read(path, MaxFileBytes, "a licence file")
	if err != nil {
		return nil, nil, err
	}
	if !signed {
		return data, nil, nil
	}
	sig, err = smallfile.Read(path+SigSuffix, MaxSigBytes, "a licence signature")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s%s does not exist (sign it with: seatsync license sign --key vendor.pem %s)",
			licensing.ErrUnsigned, path, SigSuffix, path)
	}
	if err != nil {
		return nil, nil, err
	}
	return data, sig, nil
}

// Read reads a licence file (and its signature, when pub is not nil) and
// checks it, as a run does: for `license verify` and `validate`.
func Read(path string, pub ed25519.PublicKey) (*licensing.License, error) {
	data, sig, err := readFiles(path, pub != nil)
	if err != nil {
		return nil, err
	}
	return check(data, sig, pub, nil, pub != nil)
}

// recall returns the remembered licence, re-checked against the public
// key when it can be read (a key changed since it was kept refuses it).
func (l *Loader) recall(ctx context.Context, pub ed25519.PublicKey, keyErr error, signed bool) (*InForce, error) {
	if l.Memory == nil {
		return &InForce{Signed: signed}, nil
	}
	v, at, err := l.Memory.Value(ctx, StoreKey)
	if err != nil {
		return nil, fmt.Errorf("read the remembered licence: %w", err)
	}
	if v == "" {
		return &InForce{Signed: signed}, nil
	}
	var r remembered
	data, derr := []byte(nil), json.Unmarshal([]byte(v), &r)
	if derr == nil {
		data, derr = base64.StdEncoding.DecodeString(r.Data)
	}
	if derr != nil {
		return nil, fmt.Errorf("read the remembered licence: %w", derr)
	}
	sig := []byte(r.Sig)
	var lic *licensing.License
	if signed && keyErr == nil {
		lic, err = check(data, sig, pub, nil, true)
	} else {
		// It verified when it was kept; with no key to check it against
		// now, that stands.
		lic, err = licensing.ParseLicense(data)
	}
	if err != nil {
		if l.Log != nil {
			l.Log.Warn("licence: the remembered licence no longer verifies (public_key_file changed?); it is not in force", zap.Error(err))
		}
		return &InForce{Signed: signed}, nil
	}
	return &InForce{License: lic, Data: data, Sig: sig, From: r.From, Remembered: true, RememberedAt: at, Signed: signed}, nil
}

// remember keeps f in the store, unless it is what is kept already.
func (l *Loader) remember(ctx context.Context, f *InForce) error {
	v, err := json.Marshal(remembered{Data: base64.StdEncoding.EncodeToString(f.Data), Sig: string(f.Sig), From: f.From})
	if err != nil {
		return err
	}
	old, _, err := l.Memory.Value(ctx, StoreKey)
	if err != nil {
		return fmt.Errorf("read the remembered licence: %w", err)
	}
	if old == string(v) {
		return nil
	}
	if err := l.Memory.SetValue(ctx, StoreKey, string(v)); err != nil {
		return fmt.Errorf("remember the licence: %w", err)
	}
	return nil
}

// fetch downloads license_url and, when signed, its signature.
func (l *Loader) fetch(ctx context.Context, signed bool) (data, sig []byte, err error) {
	client := l.Client
	if client == nil {
		if client, err = NewClient(l.Config.LicenseTLS); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	if data, err = get(ctx, client, l.Config.LicenseURL, MaxFileBytes); err != nil {
		return nil, nil, err
	}
	if signed {
		if sig, err = get(ctx, client, l.Config.LicenseURL+SigSuffix, MaxSigBytes); err != nil {
			return nil, nil, err
		}
	}
	return data, sig, nil
}

func get(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("fetch %s: over the %s limit", url, smallfile.Size(limit))
	}
	return b, nil
}

// NewClient is the HTTP client that fetches license_url: certificates are
// always verified, against the system's CAs and tls.ca_file; redirects
// must stay on https.
func NewClient(t config.LicenseTLS) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pemBytes, err := smallfile.Read(t.CAFile, 1<<20, "a CA file")
		if err != nil {
			return nil, fmt.Errorf("licensing.license_tls.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("licensing.license_tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{
		Transport: tr,
		Timeout:   FetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirected to %s, which is not https", req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}, nil
}

// write puts a fetched licence (and its signature) in place of
// license_file, each through a temporary file renamed over it, 0600. The
// signature goes first: a crash between the two leaves the old file with
// the new signature, which is refused, and the remembered licence (the
// new one) stays in force until the next fetch.
func (l *Loader) write(data, sig []byte, signed bool) error {
	path := l.Config.LicenseFile
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if !signed {
			return nil
		}
		if oldSig, err := os.ReadFile(path + SigSuffix); err == nil && bytes.Equal(oldSig, sig) {
			return nil
		}
	}
	if signed {
		if err := WriteAtomic(path+SigSuffix, sig); err != nil {
			return err
		}
	}
	return WriteAtomic(path, data)
}

// WriteAtomic writes data to path through a temporary file in the same
// directory, renamed over it, so that a reader sees the old file or the
// new one, never half of one. The file is 0600.
func WriteAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing there
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Policy is the licensing policy of c with the licence in force at now,
// read the way a command that only looks does (seats, profiles, an
// admin's unblock): license_url is not fetched and nothing is kept, so the
// licence is the file when it verifies, else the one the last sync
// remembered. A limit_from key the licence lacks is logged, and its pool
// is frozen; the error is only for a store that cannot be read.
func Policy(ctx context.Context, c config.Licensing, mem Memory, now time.Time, log *zap.Logger) (*licensing.Policy, *InForce, error) {
	if c.LicenseFile == "" {
		return licensing.FromConfig(c), &InForce{}, nil
	}
	if log == nil {
		log = zap.NewNop()
	}
	look := c
	look.LicenseURL = ""
	f, err := (&Loader{Config: look, Memory: mem, Log: log}).Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	pol, err := licensing.FromConfigLicensed(c, f.License, now)
	if err != nil {
		log.Warn("licence: " + err.Error())
	}
	return pol, f, nil
}
