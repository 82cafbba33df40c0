package licensing_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
)

const licenseYAML = `registered_to: Example Ltd
hosts: ["*.example.com:443", "intranet.corp.example"]
issued: 2026-01-15
expires: 2027-01-15
limits:
  MAX_USERS: 50
  MAX_EXTRANET_USERS: unlimited
  CRM_ALLOWED: yes
  CONNECTORS_ALLOWED: false
`

// openssl runs the openssl command line in dir, as a vendor would.
func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// vendorKeys makes a key pair with openssl: vendor.pem (PKCS#8) and
// vendor.pub (SubjectPublicKeyInfo).
func vendorKeys(t *testing.T, dir string) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	openssl(t, dir, "genpkey", "-algorithm", "ed25519", "-out", "vendor.pem")
	openssl(t, dir, "pkey", "-in", "vendor.pem", "-pubout", "-out", "vendor.pub")
	priv, err := licensing.ParsePrivateKey(readFile(t, filepath.Join(dir, "vendor.pem")))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := licensing.ParsePublicKey(readFile(t, filepath.Join(dir, "vendor.pub")))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A licence signed with the openssl command line verifies, and so does one
// signed by Sign: both are the base64 of the same ed25519 signature.
func TestSignatureInteroperatesWithOpenSSL(t *testing.T) {
	dir := t.TempDir()
	priv, pub := vendorKeys(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "license.yaml"), []byte(licenseYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := openssl(t, dir, "pkeyutl", "-sign", "-rawin", "-inkey", "vendor.pem", "-in", "license.yaml")
	cmd := exec.Command("base64", "-w0")
	cmd.Stdin = bytes.NewReader(raw)
	sig, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := licensing.Verify([]byte(licenseYAML), sig, pub); err != nil {
		t.Errorf("the openssl signature does not verify: %v", err)
	}
	ours := licensing.Sign([]byte(licenseYAML), priv)
	if string(bytes.TrimSpace(ours)) != string(sig) {
		t.Errorf("Sign = %q, openssl = %q (ed25519 signatures are deterministic)", ours, sig)
	}
	// And openssl verifies what Sign made.
	if err := os.WriteFile(filepath.Join(dir, "sig.bin"), ed25519.Sign(priv, []byte(licenseYAML)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := openssl(t, dir, "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "vendor.pub", "-in", "license.yaml", "-sigfile", "sig.bin")
	if !strings.Contains(string(out), "Verified Successfully") {
		t.Errorf("openssl verify: %s", out)
	}
}

// A changed byte, another key, no signature and garbage are refused, each
// saying why.
func TestVerifyRefuses(t *testing.T) {
	priv := newKey(t)
	sig := licensing.Sign([]byte(licenseYAML), priv)
	other := newKey(t)
	tampered := strings.Replace(licenseYAML, "MAX_USERS: 50", "MAX_USERS: 90", 1)
	tests := []struct {
		name      string
		data, sig []byte
		pub       ed25519.PublicKey
		want      error
		wantText  string
	}{
		{"tampered byte", []byte(tampered), sig, pub(priv), licensing.ErrBadSignature, "changed after it was signed"},
		{"wrong key", []byte(licenseYAML), sig, pub(other), licensing.ErrBadSignature, "signed with another key"},
		{"no signature", []byte(licenseYAML), []byte("\n"), pub(priv), licensing.ErrUnsigned, "no signature"},
		{"not base64", []byte(licenseYAML), []byte("not a signature!"), pub(priv), nil, "not base64"},
		{"short", []byte(licenseYAML), []byte("AAAA"), pub(priv), nil, "3 bytes, not the 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := licensing.Verify(tt.data, tt.sig, tt.pub)
			if err == nil {
				t.Fatal("verified")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantText)
			}
		})
	}
	// A signature with a line break (base64 without -w0) is fine.
	wrapped := append(append([]byte{}, sig[:40]...), append([]byte("\n"), sig[40:]...)...)
	if err := licensing.Verify([]byte(licenseYAML), wrapped, pub(priv)); err != nil {
		t.Errorf("wrapped signature: %v", err)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func TestParseLicense(t *testing.T) {
	l, err := licensing.ParseLicense([]byte(licenseYAML))
	if err != nil {
		t.Fatal(err)
	}
	if l.RegisteredTo != "Example Ltd" || !l.Issued.Equal(day(2026, 1, 15)) || !l.Expires.Equal(day(2027, 1, 15)) {
		t.Errorf("licence = %+v", l)
	}
	if q, ok := l.Limit("MAX_USERS"); !ok || q != (licensing.Quantity{N: 50}) {
		t.Errorf("MAX_USERS = %v, %v", q, ok)
	}
	if q, ok := l.Limit("MAX_EXTRANET_USERS"); !ok || !q.Unlimited {
		t.Errorf("MAX_EXTRANET_USERS = %v, %v", q, ok)
	}
	if _, ok := l.Limit("CRM_ALLOWED"); ok {
		t.Error("a flag is a limit")
	}
	if v, ok := l.Flag("CRM_ALLOWED"); !v || !ok {
		t.Errorf("CRM_ALLOWED = %v, %v", v, ok)
	}
	if v, ok := l.Flag("CONNECTORS_ALLOWED"); v || !ok {
		t.Errorf("CONNECTORS_ALLOWED = %v, %v", v, ok)
	}
	if _, ok := l.Flag("NOPE"); ok {
		t.Error("NOPE is a flag")
	}
	if diff := cmp.Diff([]string{"MAX_USERS", "MAX_EXTRANET_USERS", "CRM_ALLOWED", "CONNECTORS_ALLOWED"}, l.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}

	never, err := licensing.ParseLicense([]byte("issued: 2026-01-15\nexpires: never\nlimits: {MAX_USERS: 5}\nvendor_note: ignored\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !never.Never() || never.Expired(day(2100, 1, 1)) || never.ExpiresString() != "never" {
		t.Errorf("never = %+v", never)
	}

	for doc, want := range map[string]string{
		"expires: never\nlimits: {A: 1}\n":                                                "no issued date",
		"issued: 2026-01-15\nlimits: {A: 1}\n":                                            "no expires",
		"issued: 2026-01-15\nexpires: soon\nlimits: {A: 1}\n":                             `"soon" is not a date`,
		"issued: 2026-01-15\nexpires: never\n":                                            "no limits",
		"issued: 2026-01-15\nexpires: never\nlimits: {A: -1}\n":                           `limits.A: "-1" is not a number`,
		"issued: 2026-01-15\nexpires: never\nlimits: {A: 1}\nhosts: ['a*.example.com']\n": "wildcard",
		"issued: 2026-01-15\nexpires: never\nlimits: [1]\n":                               "not a mapping",
		"\tissued: x": "not valid YAML",
	} {
		if _, err := licensing.ParseLicense([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLicense(%q) = %v, want %q", doc, err, want)
		}
	}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// A licence is valid through the whole of its expires date (UTC).
func TestExpiry(t *testing.T) {
	l, err := licensing.ParseLicense([]byte(licenseYAML))
	if err != nil {
		t.Fatal(err)
	}
	last := day(2027, 1, 15).Add(23*time.Hour + 59*time.Minute)
	if l.Expired(last) || !l.Expired(day(2027, 1, 16)) {
		t.Errorf("expired at %s = %v, at the next day = %v", last, l.Expired(last), l.Expired(day(2027, 1, 16)))
	}
	if got := l.Left(day(2027, 1, 9)); got != 7*24*time.Hour {
		t.Errorf("left a week before = %s", got)
	}
}

func TestCovers(t *testing.T) {
	l, err := licensing.ParseLicense([]byte(licenseYAML))
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"https://app.example.com/scim/v2":        true,
		"https://a.b.EXAMPLE.com:443/scim":       true,
		"https://example.com/scim":               false, // *. needs a subdomain
		"https://app.example.com:8443/scim":      false,
		"http://app.example.com/scim":            false, // port 80
		"https://intranet.corp.example:9443/x":   true,  // no port in the pattern: any port
		"https://evil-example.com/scim":          false,
		"https://app.example.com.evil.org/scim":  false,
		"not a url":                              false,
		"http://intranet.corp.example/scim/v2/x": true,
	} {
		if got := l.Covers(u); got != want {
			t.Errorf("Covers(%q) = %v, want %v", u, got, want)
		}
	}
	any, _ := licensing.ParseLicense([]byte("issued: 2026-01-15\nexpires: never\nlimits: {}\n"))
	if !any.Covers("https://anything.example.org") {
		t.Error("a licence without hosts covers nothing")
	}
}

func TestKeysRefused(t *testing.T) {
	dir := t.TempDir()
	vendorKeys(t, dir)
	if _, err := licensing.ParsePublicKey(readFile(t, filepath.Join(dir, "vendor.pem"))); err == nil || !strings.Contains(err.Error(), "not a PUBLIC KEY") {
		t.Errorf("a private key as public key: %v", err)
	}
	if _, err := licensing.ParsePrivateKey(readFile(t, filepath.Join(dir, "vendor.pub"))); err == nil || !strings.Contains(err.Error(), "not a PKCS#8 PRIVATE KEY") {
		t.Errorf("a public key as private key: %v", err)
	}
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.pem")
	if _, err := licensing.ParsePrivateKey(readFile(t, filepath.Join(dir, "rsa.pem"))); err == nil || !strings.Contains(err.Error(), "not ed25519") {
		t.Errorf("an RSA key: %v", err)
	}
	if _, err := licensing.ParsePublicKey([]byte("hello")); err == nil || !strings.Contains(err.Error(), "not a PEM file") {
		t.Errorf("not PEM: %v", err)
	}
}

// Pools take their limits from the licence; an expired licence, or none,
// freezes them: no new seat, and no overage, so nobody is blocked.
func TestFromConfigLicensed(t *testing.T) {
	lic, err := licensing.ParseLicense([]byte(licenseYAML))
	if err != nil {
		t.Fatal(err)
	}
	c := config.Licensing{Pools: []config.Pool{
		{Name: "primary", LimitFrom: "MAX_USERS", Reserve: 2, Areas: []string{"primary"}},
		{Name: "extranet", LimitFrom: "MAX_EXTRANET_USERS", Areas: []string{"partners"}},
		{Name: "kiosk", Limit: config.Limit{N: 3}, Areas: []string{"kiosk"}},
	}}
	valid := day(2026, 6, 1)
	pol, err := licensing.FromConfigLicensed(c, lic, valid)
	if err != nil {
		t.Fatal(err)
	}
	if p := pol.Pools[0]; p.Limit != 50 || p.Unlimited || p.Frozen || p.Remaining(40) != 8 {
		t.Errorf("primary = %+v", p)
	}
	if p := pol.Pools[1]; !p.Unlimited || p.Frozen || !p.HasRoom(1_000_000) {
		t.Errorf("extranet = %+v", p)
	}

	for name, pol := range map[string]*licensing.Policy{
		"expired": must(licensing.FromConfigLicensed(c, lic, day(2027, 1, 16))),
		"none":    licensing.FromConfig(c),
	} {
		for _, p := range pol.Pools[:2] {
			if !p.Frozen || p.Unlimited || p.HasRoom(0) || p.Remaining(0) != 0 || p.Overage(500) != 0 {
				t.Errorf("%s: %s = %+v: want frozen, no room, no overage", name, p.Name, p)
			}
		}
		if p := pol.Pools[2]; p.Frozen || !p.HasRoom(2) {
			t.Errorf("%s: a pool with its own limit = %+v", name, p)
		}
	}
	if p := must(licensing.FromConfigLicensed(c, lic, day(2027, 1, 16))).Pools[0]; p.Limit != 50 {
		t.Errorf("an expired licence's pool shows limit %d, want the licence's 50", p.Limit)
	}

	c.Pools[2].LimitFrom = "MAX_CRM"
	_, err = licensing.FromConfigLicensed(c, lic, valid)
	var missing *licensing.MissingKeyError
	if !errors.As(err, &missing) || missing.Index != 2 ||
		err.Error() != "licensing.pools[2].limit_from: the licence (issued 2026-01-15) has no limit MAX_CRM (its limits: MAX_USERS, MAX_EXTRANET_USERS); pool kiosk gives no new seats" {
		t.Errorf("missing key: %v", err)
	}
	c.Pools[2].LimitFrom = "CRM_ALLOWED"
	if _, err := licensing.FromConfigLicensed(c, lic, valid); err == nil || !strings.Contains(err.Error(), "CRM_ALLOWED is a yes/no flag of the licence, not a limit") {
		t.Errorf("a flag as limit: %v", err)
	}
}

func must(p *licensing.Policy, err error) *licensing.Policy {
	if err != nil {
		panic(err)
	}
	return p
}
