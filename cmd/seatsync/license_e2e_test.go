package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const e2eLicense = `registered_to: Example Ltd
hosts: ["*.example.com:443"]
issued: 2026-01-15
expires: never
limits:
  MAX_USERS: 2
  MAX_EXTRANET_USERS: unlimited
  CRM_ALLOWED: yes
`

// licenseSite is a site whose pools take their limits from a vendor
// licence signed with a key made by openssl. with.yaml adds two SCIM
// targets, one the licence covers and one it does not.
func licenseSite(t *testing.T) *site {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	s := &site{t: t, dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "seatsync.yaml")
	base := `version: 1
store: {path: seatsync.db}
licensing:
  license_file: license.yaml
  public_key_file: vendor.pub
  pools:
    - {name: primary, areas: [primary], limit_from: MAX_USERS}
    - {name: extranet, areas: [partners], limit_from: MAX_EXTRANET_USERS}
sources:
  - name: hr
    type: csv
    path: people.csv
    delimiter: ";"
    mapping: {external_id: employee_id, username: login, email: mail, given_name: first_name, family_name: last_name, groups: teams, enabled: active}
    area_rules: [{group: Partners, area: partners}]
log: {level: warn, format: console}
`
	s.write("seatsync.yaml", base)
	s.write("with-targets.yaml", base+`targets:
  - {name: intranet, type: scim, url: "https://intranet.example.com/scim/v2", token: x}
  - {name: lms, type: scim, url: "https://lms.other.example:8443/scim/v2", token: x}
`)
	s.people(row("E1", "alice"), row("E2", "bob"), row("E3", "carol"), row("P1", "pat", "teams=Partners"))
	s.write("license.yaml", e2eLicense)
	s.openssl("genpkey", "-algorithm", "ed25519", "-out", "vendor.pem")
	s.openssl("pkey", "-in", "vendor.pem", "-pubout", "-out", "vendor.pub")
	return s
}

func (s *site) openssl(args ...string) []byte {
	s.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = s.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// The vendor signs with `license sign` or with openssl; either signature
// verifies, and a changed byte does not.
func TestLicenseSignVerifyCLI(t *testing.T) {
	s := licenseSite(t)
	if r := s.run("license", "sign", "license.yaml"); r.code != exitUsage || !strings.Contains(r.stderr, "missing --key") {
		t.Errorf("sign without --key: want exit 2, got %s", r)
	}
	r := s.must(exitOK, "license", "sign", "--key", "vendor.pem", "license.yaml")
	if strings.TrimSpace(r.stdout) != "wrote license.yaml.sig" {
		t.Errorf("sign: %s", r)
	}
	ours := strings.TrimSpace(s.read("license.yaml.sig"))

	// openssl's signature is the same (ed25519 is deterministic), and the
	// binary verifies it.
	raw := s.openssl("pkeyutl", "-sign", "-rawin", "-inkey", "vendor.pem", "-in", "license.yaml")
	cmd := exec.Command("base64", "-w0")
	cmd.Stdin = bytes.NewReader(raw)
	b64, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(b64) != ours {
		t.Errorf("license sign wrote %q, openssl signs %q", ours, b64)
	}
	s.write("license.yaml.sig", string(b64))
	r = s.must(exitOK, "license", "verify", "-c", s.config)
	if !strings.Contains(r.stdout, "license.yaml: valid, issued 2026-01-15, expires never (signature checked with ") {
		t.Errorf("verify: %s", r)
	}

	// A tampered byte: exit 1, saying why.
	s.write("license.yaml", strings.Replace(e2eLicense, "MAX_USERS: 2", "MAX_USERS: 3", 1))
	r = s.must(exitFailed, "license", "verify", "-c", s.config)
	if !strings.Contains(r.stdout, "invalid: the licence's signature does not match (the file was changed after it was signed") {
		t.Errorf("verify of a tampered licence: %s", r)
	}
	// An explicit LICENSE argument, unsigned.
	s.write("other.yaml", e2eLicense)
	r = s.must(exitFailed, "license", "verify", "-c", s.config, "other.yaml")
	if !strings.Contains(r.stdout, "other.yaml: invalid: the licence has no signature: other.yaml.sig does not exist") {
		t.Errorf("verify of an unsigned licence: %s", r)
	}
	// Not a licence: not signed.
	s.write("notes.yaml", "hello: world\n")
	if r := s.run("license", "sign", "--key", "vendor.pem", "notes.yaml"); r.code != exitFailed || !strings.Contains(r.stderr, "no issued date") {
		t.Errorf("sign of a non-licence: %s", r)
	}
	// Signed with the public key: a usage error.
	if r := s.run("license", "sign", "--key", "vendor.pub", "license.yaml"); r.code != exitUsage || !strings.Contains(r.stderr, "not a PKCS#8 PRIVATE KEY") {
		t.Errorf("sign with a public key: %s", r)
	}
}

// license show tells validity, expiry, the limits and which pool uses
// which, and which targets the licence covers; validate checks the
// licence and warns about a target it does not cover.
func TestLicenseShowValidateCLI(t *testing.T) {
	s := licenseSite(t)
	s.must(exitOK, "license", "sign", "--key", "vendor.pem", "license.yaml")
	withTargets := filepath.Join(s.dir, "with-targets.yaml")

	r := s.must(exitOK, "license", "show", "-c", withTargets)
	for _, want := range []string{
		"license.yaml: valid (signature checked with ",
		"registered to  Example Ltd", "expires        never", "hosts          *.example.com:443",
		"MAX_USERS           2          pool primary",
		"MAX_EXTRANET_USERS  unlimited  pool extranet",
		"CRM_ALLOWED         yes",
		"primary   MAX_USERS           2",
		"intranet  https://intranet.example.com/scim/v2    yes",
		"lms       https://lms.other.example:8443/scim/v2  NO",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("license show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = s.must(exitOK, "license", "show", "-c", withTargets, "--format", "json")
	var show struct {
		State  string `json:"state"`
		Signed bool   `json:"signed"`
		Limits []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
			Flag  bool   `json:"flag"`
		} `json:"limits"`
		Pools []struct {
			Name      string `json:"name"`
			LimitFrom string `json:"limit_from"`
			Limit     int    `json:"limit"`
			Unlimited bool   `json:"unlimited"`
		} `json:"pools"`
		Targets []struct {
			Name    string `json:"name"`
			Covered bool   `json:"covered"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil {
		t.Fatalf("json: %v\n%s", err, r)
	}
	if show.State != "valid" || !show.Signed || len(show.Limits) != 3 || show.Limits[2].Value != true || !show.Limits[2].Flag ||
		show.Pools[0].Limit != 2 || !show.Pools[1].Unlimited || !show.Targets[0].Covered || show.Targets[1].Covered {
		t.Errorf("license show json: %+v", show)
	}

	r = s.must(exitOK, "validate", "-c", withTargets)
	if !strings.Contains(r.stdout, "license.yaml: ok, issued 2026-01-15, expires never (signature checked)\nok\n") {
		t.Errorf("validate: %s", r)
	}
	if !strings.Contains(r.stderr, "targets[1].url: https://lms.other.example:8443/scim/v2 is not covered by the licence (its hosts: *.example.com:443)") ||
		strings.Contains(r.stderr, "targets[0]") {
		t.Errorf("validate warnings: %s", r)
	}

	// A pool taking a key the licence lacks: a problem at its line.
	cfg := strings.Replace(s.read("seatsync.yaml"), "limit_from: MAX_EXTRANET_USERS", "limit_from: MAX_PARTNERS", 1)
	s.write("missing.yaml", cfg)
	r = s.must(exitUsage, "validate", "-c", "missing.yaml")
	if !strings.Contains(r.stdout, "line 8: licensing.pools[1].limit_from: the licence (issued 2026-01-15) has no limit MAX_PARTNERS (its limits: MAX_USERS, MAX_EXTRANET_USERS)") {
		t.Errorf("validate of a missing key: %s", r)
	}
	if r := s.run("license", "verify", "-c", "missing.yaml"); r.code != exitFailed || !strings.Contains(r.stdout, "no limit MAX_PARTNERS") {
		t.Errorf("verify of a missing key: %s", r)
	}

	// A refused licence: validate fails; no licence yet: a warning only.
	s.write("license.yaml", e2eLicense+"  MORE: 1\n")
	r = s.must(exitUsage, "validate", "-c", s.config)
	if !strings.Contains(r.stdout, "licensing.license_file: the licence was refused: the licence's signature does not match") {
		t.Errorf("validate of a tampered licence: %s", r)
	}
	if err := os.Remove(filepath.Join(s.dir, "license.yaml")); err != nil {
		t.Fatal(err)
	}
	r = s.must(exitOK, "validate", "-c", s.config)
	if !strings.Contains(r.stderr, "does not exist (yet): pools with limit_from give no new seats") {
		t.Errorf("validate without the licence: %s", r)
	}
}

// A sync takes the limits from the licence and remembers it; when the
// file goes bad, the next sync and license show say the remembered one is
// in force.
func TestLicenseRememberedCLI(t *testing.T) {
	s := licenseSite(t)
	s.must(exitOK, "license", "sign", "--key", "vendor.pem", "license.yaml")
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if p := rep.Pools[0]; p.Limit != 2 || p.UsedAfter != 2 || p.QueuedAfter != 1 {
		t.Errorf("primary after the first sync: %+v", p)
	}
	if p := rep.Pools[1]; !p.Unlimited || p.UsedAfter != 1 {
		t.Errorf("extranet after the first sync: %+v", p)
	}

	s.write("license.yaml", strings.Replace(e2eLicense, "MAX_USERS: 2", "MAX_USERS: 20", 1))
	r := s.must(exitOK, "sync", "-c", s.config)
	for _, want := range []string{
		"licence: valid, issued 2026-01-15, expires never, registered to Example Ltd",
		"licence REFUSED: the licence " + filepath.Join(s.dir, "license.yaml") + " was refused: the licence's signature does not match",
		"the remembered licence (issued 2026-01-15, expires never) stays in force",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("sync report lacks %q:\n%s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "license_invalid") && !strings.Contains(r.stderr, "licence refused") {
		t.Errorf("sync log does not say the licence was refused:\n%s", r.stderr)
	}
	r = s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	if !strings.Contains(r.stdout, `"limit": 2,`) {
		t.Errorf("seats with the remembered licence: %s", r)
	}
	r = s.must(exitOK, "license", "show", "-c", s.config)
	if !strings.Contains(r.stdout, "REFUSED") || !strings.Contains(r.stdout, "in force: the remembered licence, kept by the sync of ") {
		t.Errorf("license show: %s", r)
	}
}
