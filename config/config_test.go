package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreLocs leaves out where each value was written (see TestLine).
var ignoreLocs = cmpopts.IgnoreUnexported(Config{})

func mustParse(t *testing.T, doc, path string, env map[string]string) *Config {
	t.Helper()
	cfg, err := parse([]byte(doc), path, testEnv(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefaults(t *testing.T) {
	doc := `version: 1
licensing:
  pools: [{name: primary, limit: unlimited, areas: [primary]}]
sources:
  - {name: hr, type: file, path: /srv/hr.csv}
  - {name: ad, type: dir, url: ldaps://dc1, base_dn: "dc=corp"}
  - {name: okta, type: api, org_url: "https://example.okta.com", token: t}
notify:
  email: {to: [it@example.com], from: seatsync@example.com, smtp: {host: smtp.example.com}}
  webhooks: [{url: "https://hooks.example.com/x"}]
`
	got := mustParse(t, doc, "/etc/seatsync/seatsync.yaml", nil)
	want := &Config{
		Version:   1,
		Store:     Store{Driver: "sqlite", Path: "/etc/seatsync/seatsync.db"},
		Licensing: Licensing{Pools: []Pool{{Name: "primary", Limit: Limit{Unlimited: true}, Areas: []string{"primary"}}}, OnOverage: "keep"},
		Safety:    Safety{MaxDeprovision: Threshold{Percent: true, Value: 10, Set: true}},
		Sources: []Source{
			{Name: "hr", Type: "file", Settings: &fileSettings{Path: "/srv/hr.csv"}, UsernameCase: "lower", OnLeave: "block", Area: "primary", MaxFieldBytes: 4096},
			{
				Name: "ad", Type: "dir", Settings: &dirSettings{URL: StringList{"ldaps://dc1"}, BaseDN: "dc=corp", PageSize: 500},
				UsernameCase: "lower", OnLeave: "block", Area: "primary", MaxFieldBytes: 4096,
			},
			{
				Name: "okta", Type: "api", Settings: &apiSettings{OrgURL: "https://example.okta.com", Token: NewSecret("t")},
				UsernameCase: "lower", OnLeave: "block", Area: "primary", MaxFieldBytes: 4096,
			},
		},
		Notify: Notify{
			WarnAtPercent: 90,
			Email: &Email{
				To: []string{"it@example.com"}, From: "seatsync@example.com",
				SMTP: SMTP{Host: "smtp.example.com", Port: 587, TLS: "starttls"},
			},
			Webhooks: []Webhook{{URL: "https://hooks.example.com/x", Format: "json", Timeout: Duration{10 * time.Second}}},
		},
		Server: Server{Listen: "127.0.0.1:8080", RunOnStart: "auto", ShutdownTimeout: Duration{30 * time.Second}, LeaderCheck: Duration{5 * time.Second}},
		Log:    Log{Level: "info", Format: "json"},
		Path:   "/etc/seatsync/seatsync.yaml",
	}
	if diff := cmp.Diff(want, got, ignoreLocs); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestSMTPPortFollowsTLS(t *testing.T) {
	for _, tc := range []struct {
		smtp string
		port int
	}{
		{"{host: mx}", 587},
		{"{host: mx, tls: starttls}", 587},
		{"{host: mx, tls: none}", 587},
		{"{host: mx, tls: tls}", 465},
		{"{host: mx, tls: tls, port: 2465}", 2465},
	} {
		doc := readTestdata(t, "minimal.yaml") + "notify: {email: {to: [a@example.com], from: b@example.com, smtp: " + tc.smtp + "}}\n"
		if got := mustParse(t, doc, "", nil).Notify.Email.SMTP.Port; got != tc.port {
			t.Errorf("smtp %s: port = %d, want %d", tc.smtp, got, tc.port)
		}
	}
}

// An explicit zero is checked, not replaced by the default.
func TestExplicitZeroIsNotDefaulted(t *testing.T) {
	doc := readTestdata(t, "minimal.yaml") + "safety: {max_deprovision: 0}\n"
	got := mustParse(t, doc, "", nil).Safety.MaxDeprovision
	if want := (Threshold{Value: 0, Set: true}); got != want {
		t.Errorf("max_deprovision = %+v, want %+v", got, want)
	}
}

func TestServeKeys(t *testing.T) {
	doc := readTestdata(t, "minimal.yaml") + "server: {run_on_start: never, shutdown_timeout: 90s, leader_check: 2s}\n"
	got := mustParse(t, doc, "", nil).Server
	if got.RunOnStart != "never" || got.ShutdownTimeout.Duration != 90*time.Second || got.LeaderCheck.Duration != 2*time.Second {
		t.Errorf("server = %+v, want run_on_start never, shutdown_timeout 90s and leader_check 2s", got)
	}
	got = mustParse(t, readTestdata(t, "minimal.yaml"), "", nil).Server
	if got.RunOnStart != DefaultRunOnStart || got.ShutdownTimeout.Duration != DefaultShutdownTimeout || got.LeaderCheck.Duration != DefaultLeaderCheck {
		t.Errorf("defaults: server = %+v, want run_on_start auto, shutdown_timeout 30s and leader_check 5s", got)
	}
}

func TestRelativePaths(t *testing.T) {
	doc := `version: 1
store: {path: data/seatsync.db}
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
sources:
  - {name: hr, type: file, path: exports/hr.csv}
  - {name: hr2, type: file, path: /abs/hr.csv}
  - {name: ad, type: dir, url: ldaps://dc1, base_dn: "dc=corp", tls: {ca_file: ca.pem}}
`
	type paths struct{ Store, CSV, CSVAbs, CA string }
	get := func(c *Config) paths {
		return paths{c.Store.Path, c.Sources[0].Settings.(*fileSettings).Path, c.Sources[1].Settings.(*fileSettings).Path,
			c.Sources[2].Settings.(*dirSettings).TLS.CAFile}
	}
	for _, tc := range []struct {
		configPath string
		want       paths
	}{
		{"/etc/seatsync/seatsync.yaml", paths{"/etc/seatsync/data/seatsync.db", "/etc/seatsync/exports/hr.csv", "/abs/hr.csv", "/etc/seatsync/ca.pem"}},
		{"", paths{"data/seatsync.db", "exports/hr.csv", "/abs/hr.csv", "ca.pem"}},
	} {
		got := get(mustParse(t, doc, tc.configPath, nil))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("config at %q (-want +got):\n%s", tc.configPath, diff)
		}
	}

	// The default sqlite file sits next to the configuration.
	if got := mustParse(t, readTestdata(t, "minimal.yaml"), "/srv/seatsync/c.yaml", nil).Store.Path; got != "/srv/seatsync/seatsync.db" {
		t.Errorf("default store path = %q", got)
	}
	if got := mustParse(t, readTestdata(t, "minimal.yaml"), "", nil).Store.Path; got != "seatsync.db" {
		t.Errorf("default store path without a file = %q", got)
	}
	// A relative config path is made absolute first.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, doc, "conf/seatsync.yaml", nil).Sources[0].Settings.(*fileSettings).Path; got != filepath.Join(wd, "conf/exports/hr.csv") {
		t.Errorf("csv path with a relative config path = %q", got)
	}
}

func TestExpand(t *testing.T) {
	env := testEnv(map[string]string{"A": "alpha", "B": "b", "EMPTY": "", "REF": "${A}"})
	tests := []struct {
		in, want string
		problems []string
	}{
		{"plain", "plain", nil},
		{"${A}", "alpha", nil},
		{"x${A}-${B}y", "xalpha-by", nil},
		{"${EMPTY}", "", nil},
		{"$${A}", "${A}", nil},
		{"$${A} and ${A}", "${A} and alpha", nil},
		{"pa$$word $A", "pa$$word $A", nil},
		{"${REF}", "${A}", nil}, // values are not expanded again
		{"${MISSING}", "", []string{"environment variable MISSING is not set"}},
		{"${A}${MISSING}${ALSO}", "alpha", []string{"environment variable MISSING is not set", "environment variable ALSO is not set"}},
		{"${A-x}", "", []string{"${A-x} is not a variable reference: a name is letters, digits and _ (write $${ for a literal ${)"}},
		{"${}", "", []string{"${} is not a variable reference: a name is letters, digits and _ (write $${ for a literal ${)"}},
		{"${A", "${A", []string{"${ is not closed by }; write $${ for a literal ${"}},
	}
	for _, tc := range tests {
		got, problems := expand(tc.in, env)
		if diff := cmp.Diff(tc.problems, problems); diff != "" {
			t.Errorf("expand(%q) problems (-want +got):\n%s", tc.in, diff)
			continue
		}
		if len(problems) == 0 && got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVariables(t *testing.T) {
	doc := `version: ${VERSION}
licensing:
  pools: [{name: primary, limit: ${SEATS}, areas: [primary]}]
  exempt: [$${ADMIN}, x${DELIM}y]
sources:
  - {name: hr, type: file, path: "${HR_DIR}/hr.csv", delimiter: ${DELIM}}
  - name: filter
    type: api
    org_url: https://example.okta.com
    token: ${TOKEN}
    filter: 'profile.name eq "$${literal}"'
server: {listen: "${HOST}:8080", token: ${TOKEN}}
`
	env := map[string]string{"VERSION": "1", "SEATS": "25", "HR_DIR": "/srv/hr", "DELIM": ";", "TOKEN": "tok-secret-0123456789abcdef0123456789", "HOST": "0.0.0.0"}
	cfg := mustParse(t, doc, "", env)
	type got struct {
		Version         int
		Limit           Limit
		Path, Delim     string
		Filter, Listen  string
		Token, APIToken string
		Exempt          []string
	}
	want := got{1, Limit{N: 25}, "/srv/hr/hr.csv", ";", `profile.name eq "${literal}"`, "0.0.0.0:8080", "tok-secret-0123456789abcdef0123456789", "tok-secret-0123456789abcdef0123456789", []string{"${ADMIN}", "x;y"}}
	file, api := cfg.Sources[0].Settings.(*fileSettings), cfg.Sources[1].Settings.(*apiSettings)
	have := got{cfg.Version, cfg.Licensing.Pools[0].Limit, file.Path, file.Delimiter,
		api.Filter, cfg.Server.Listen, api.Token.Reveal(), cfg.Server.Token.Reveal(), cfg.Licensing.Exempt}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("expanded values (-want +got):\n%s", diff)
	}
}

func TestSecretFiles(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "secret_files.yaml"), "testdata/secret_files.yaml", map[string]string{"SEATSYNC_API_TOKEN": "api-token-long-enough-for-0.0.0.0"})
	got := map[string]string{
		"dsn":           cfg.Store.DSN.Reveal(),
		"bind_password": cfg.Sources[0].Settings.(*dirSettings).BindPassword.Reveal(),
		"token":         cfg.Sources[1].Settings.(*apiSettings).Token.Reveal(),
	}
	want := map[string]string{
		"dsn":           "postgres://seatsync:pg-secret@db/seatsync",
		"bind_password": "bind-secret-from-file",
		"token":         "okta-token-from-file", // the file ends in \r\n
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("secrets read from files (-want +got):\n%s", diff)
	}
	abs, err := filepath.Abs("testdata/corp-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].Settings.(*dirSettings).TLS.CAFile; got != abs {
		t.Errorf("ca_file = %q, want %q", got, abs)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content, want, err string
	}{
		{"s3cret", "s3cret", ""},
		{"s3cret\n", "s3cret", ""},
		{"s3cret\r\n", "s3cret", ""},
		{"s3cret\n\n", "s3cret\n", ""}, // only one newline is trimmed
		{" s3cret \n", " s3cret ", ""},
		{"\n", "", "is empty"},
		{strings.Repeat("x", MaxSecretFileBytes+1), "", "is 65537 bytes, over the 64 KiB limit for a secret file"},
	} {
		name := filepath.Join(dir, "secret")
		if err := os.WriteFile(name, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readSecretFile(name)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("content %.20q: error = %v, want %q", tc.content, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("content %.20q: %v", tc.content, err)
		case got != tc.want:
			t.Errorf("content %.20q: got %q, want %q", tc.content, got, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := readSecretFile(dir); err == nil || !strings.Contains(err.Error(), "is a directory, not a regular file") {
		t.Errorf("reading a directory: %v", err)
	}
	if _, err := readSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v, want fs.ErrNotExist", err)
	}
}

// TestSecretFileBounds: a *_file secret that names a named pipe, a device
// or a big file is a problem at the key's path and line, naming the file
// and the limit, and found at once: nothing waits for a writer. A link to
// a regular file (how Kubernetes mounts secrets) is read.
func TestSecretFileBounds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "token.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 70000)), 0o600); err != nil {
		t.Fatal(err)
	}
	// ..data/bind -> bind, as kubelet lays out a secret volume.
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "..data", "bind"), []byte("bind-from-a-link\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "bind"), filepath.Join(dir, "bind")); err != nil {
		t.Fatal(err)
	}
	doc := head + `  - name: ad
    type: dir
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password_file: bind
store:
  driver: postgres
  dsn_file: /dev/zero
server:
  token_file: token.fifo
notify:
  email: {to: [a@example.com], from: b@example.com, smtp: {host: mx, username: u, password_file: big.txt}}
`
	cfg, err := parse([]byte(doc), filepath.Join(dir, "seatsync.yaml"), nil)
	want := Problems{
		{Path: "store.dsn_file", Line: 16, Message: "/dev/zero is a character device, not a regular file"},
		{Path: "server.token_file", Line: 18, Message: fifo + " is a named pipe, not a regular file"},
		{Path: "notify.email.smtp.password_file", Line: 20, Message: big + " is 70000 bytes, over the 64 KiB limit for a secret file"},
	}
	var got Problems
	if !errors.As(err, &got) {
		t.Fatalf("Parse: %v, want Problems", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if cfg == nil || cfg.Sources[1].Settings.(*dirSettings).BindPassword.Reveal() != "bind-from-a-link" {
		t.Errorf("the secret behind a link was not read")
	}
}

// TestSecretFileFromCredentialsDirectory: a *_file name may be built from
// ${VAR}, as systemd's LoadCredential= needs (token_file:
// ${CREDENTIALS_DIRECTORY}/api-token); docs/operations.md relies on it.
func TestSecretFileFromCredentialsDirectory(t *testing.T) {
	dir := t.TempDir()
	token := "api-token-from-a-credential-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := head + "server:\n  listen: 0.0.0.0:8080\n  token_file: ${CREDENTIALS_DIRECTORY}/api-token\n"
	cfg := mustParse(t, doc, "/etc/seatsync/seatsync.yaml", map[string]string{"CREDENTIALS_DIRECTORY": dir})
	if got := cfg.Server.Token.Reveal(); got != token {
		t.Errorf("server.token = %q, want %q", got, token)
	}
}

// TestShortTokenFile: a short token read from token_file is reported at
// token_file, where the user wrote it.
func TestShortTokenFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("SECRET-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parse([]byte(head+"server:\n  listen: 0.0.0.0:8080\n  token_file: token\n"), filepath.Join(dir, "seatsync.yaml"), nil)
	var got Problems
	if !errors.As(err, &got) || len(got) != 1 || got[0].Path != "server.token_file" || got[0].Line != 10 ||
		!strings.Contains(got[0].Message, "shorter than 32 characters") {
		t.Fatalf("Parse: %v, want one problem at line 10: server.token_file", err)
	}
	if strings.Contains(err.Error(), "SECRET-") {
		t.Errorf("the problem shows the token: %v", err)
	}
}

// TestLoadBounds: the configuration file must be a regular file (a link
// to one is fine) of at most 1 MiB; a bigger one is refused without being
// read, a named pipe without waiting for a writer.
func TestLoadBounds(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link, testPlugins); err != nil {
		t.Errorf("Load through a link: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse 100 MB file: reading it whole is what must not happen.
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{big, "configuration: " + big + " is 104857600 bytes, over the 1 MiB limit for a configuration file"},
		{fifo, "configuration: " + fifo + " is a named pipe, not a regular file"},
		{dir, "configuration: " + dir + " is a directory, not a regular file"},
		{filepath.Join(dir, "missing.yaml"), "configuration: cannot read " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"},
	} {
		if _, err := Load(tc.path, testPlugins); err == nil || err.Error() != tc.want {
			t.Errorf("Load(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
}

// TestSecretsNeverShown sets every secret, through variables and files,
// then checks that no error and no printed form of the Config shows one.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"dsn": "SECRET-dsn-file", "bind": "SECRET-bind-file", "smtp": "SECRET-smtp-file"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"TOKEN": "SECRET-okta-env", "API": "SECRET-api-env", "PW": "SECRET-pw-env"}
	valid := `version: 1
store: {driver: postgres, dsn_file: dsn}
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
sources:
  - {name: ad, type: dir, url: ldaps://dc1, base_dn: "dc=corp", bind_dn: cn=svc, bind_password_file: bind}
  - {name: okta, type: api, org_url: "https://example.okta.com", token: "${TOKEN}"}
notify:
  email: {to: [a@example.com], from: b@example.com, smtp: {host: mx, username: u, password_file: smtp}}
server: {token: "${API}"}
`
	cfg := mustParse(t, valid, filepath.Join(dir, "seatsync.yaml"), env)
	if cfg.Store.DSN.Reveal() != "SECRET-dsn-file" || cfg.Server.Token.Reveal() != "SECRET-api-env" {
		t.Fatalf("secrets not loaded: %q %q", cfg.Store.DSN.Reveal(), cfg.Server.Token.Reveal())
	}
	var shown []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %[1]v"} {
		shown = append(shown, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, *cfg), fmt.Sprintf(verb, cfg.Sources[0]))
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, string(js))

	// Secrets next to every kind of problem: wrong types, a bad enum
	// nearby, both forms set, a secret on the wrong source type.
	invalid := `version: 1
store: {driver: postgres, dsn: "${PW}", dsn_file: dsn}
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
sources:
  - {name: ad, type: dir, url: ldaps://dc1, base_dn: "dc=corp", bind_password: "${PW}", tls: {mode: none}}
  - {name: hr, type: file, path: x.csv, token: SECRET-literal-on-csv, bind_password_file: bind}
  - {name: okta, type: api, org_url: "https://example.okta.com", token: [SECRET-in-list], auth: private_key}
notify:
  email: {to: [a@example.com], from: b@example.com, smtp: {host: mx, password: "${PW}", tls: ssl}}
server: {token: {value: SECRET-in-mapping}, listen: "0.0.0.0:80"}
`
	_, err = parse([]byte(invalid), filepath.Join(dir, "seatsync.yaml"), testEnv(env))
	if err == nil {
		t.Fatal("invalid config parsed")
	}
	shown = append(shown, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))

	for _, s := range shown {
		if i := strings.Index(s, "SECRET-"); i >= 0 {
			t.Errorf("a secret is shown: ...%s...", s[max(0, i-300):min(len(s), i+30)])
		}
	}
}

func TestMergeKeys(t *testing.T) {
	doc := `version: 1
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
sources:
  - &ad
    name: dc1
    type: dir
    url: ldaps://dc1
    base_dn: "dc=corp"
    page_size: 100
  - <<: *ad
    name: dc2
    url: ldaps://dc2
  - <<: [{name: first-wins, page_size: 7}, *ad]
    name: dc3
`
	cfg := mustParse(t, doc, "", nil)
	type src struct {
		Name, Type, URL string
		PageSize        int
	}
	var got []src
	for _, s := range cfg.Sources {
		set := s.Settings.(*dirSettings)
		got = append(got, src{s.Name, s.Type, set.URL[0], set.PageSize})
	}
	want := []src{{"dc1", "dir", "ldaps://dc1", 100}, {"dc2", "dir", "ldaps://dc2", 100}, {"dc3", "dir", "ldaps://dc1", 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged sources (-want +got):\n%s", diff)
	}
}

// A mapping that merges itself, and aliases that refer back to their own
// anchor, are reported, not followed forever.
func TestSelfReference(t *testing.T) {
	for _, doc := range []string{
		"version: 1\nstore: &s {<<: *s, driver: sqlite}\n",
		"version: 1\nsources: &s [*s]\n",
		"version: 1\nlicensing: &l {pools: [*l]}\n",
		"version: 1\nlicensing: &l {pools: [{<<: *l}]}\n",
	} {
		_, err := parse([]byte(doc), "", nil)
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("%q: error = %v, want Problems", doc, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "seatsync.yaml")
	if err := os.WriteFile(name, []byte(readTestdata(t, "minimal.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(name, testPlugins)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].Settings.(*fileSettings).Path; cfg.Path != name || got != filepath.Join(dir, "hr.csv") {
		t.Errorf("Load: Path = %q, file path = %q", cfg.Path, got)
	}

	t.Setenv("SEATSYNC_TEST_SEATS", "12")
	doc := strings.Replace(readTestdata(t, "minimal.yaml"), "limit: 25", "limit: ${SEATSYNC_TEST_SEATS}", 1)
	if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load(name, testPlugins); err != nil || cfg.Licensing.Pools[0].Limit.N != 12 {
		t.Errorf("Load with ${SEATSYNC_TEST_SEATS}: %v", err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml"), testPlugins); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(name, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ps Problems
	if _, err := Load(name, testPlugins); !errors.As(err, &ps) || len(ps) != 2 {
		t.Errorf("Load(no pools, no sources) = %v, want 2 problems", err)
	}
}

// With problems, Parse still returns what it could decode, so callers can
// add their own problems, at the right lines.
func TestPartialConfig(t *testing.T) {
	doc := "version: 1\nlicensing:\n  pools: [{name: p, limit: 1, areas: [primary]}]\nsources:\n  - {name: ad, type: dir}\n"
	cfg, err := parse([]byte(doc), "", nil)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("err = %v, want 2 problems", err)
	}
	if cfg == nil || cfg.Sources[0].Type != "dir" || cfg.Sources[0].Settings.(*dirSettings).PageSize != 500 || cfg.Line("sources[0].type") != 5 {
		t.Errorf("partial config = %+v", cfg)
	}
	for _, doc := range []string{"version: [1", "- a\n", "plain words\n"} {
		if cfg, err := parse([]byte(doc), "", nil); err == nil || cfg != nil {
			t.Errorf("Parse(%q) = %v, %v; want no config and an error", doc, cfg, err)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	for _, doc := range []string{"", "\n", "# only a comment\n", "---\n", "~\n"} {
		_, err := parse([]byte(doc), "", nil)
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 0 || !strings.Contains(ps[0].Message, "the file is empty") {
			t.Errorf("Parse(%q) = %v, want one problem saying the file is empty", doc, err)
		}
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{Path: "sources[1].tls.mode", Line: 14, Message: `"ldap" is not one of ldaps, starttls, none`},
		{Path: "version", Line: 1, Message: "required: write version: 1"},
		{Message: "the file is empty"},
		{Line: 3, Message: "invalid YAML: x"},
	}
	want := `the file is empty
line 1: version: required: write version: 1
line 3: invalid YAML: x
line 14: sources[1].tls.mode: "ldap" is not one of ldaps, starttls, none`
	if got := ps.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if ps[0].Line != 14 {
		t.Error("Error() reordered the list it was called on")
	}
}

func TestThresholdOf(t *testing.T) {
	for _, tc := range []struct {
		threshold string
		total     int
		want      int
	}{
		{"500", 0, 500},
		{"500", 10, 500},
		{"0", 100, 0},
		{"10%", 0, 0},
		{"10%", 5, 1}, // floor(0.5) is 0, but at least 1
		{"10%", 9, 1},
		{"10%", 10, 1},
		{"10%", 19, 1},
		{"10%", 20, 2},
		{"10%", 1000, 100},
		{"0%", 1000, 0},
		{"2.5%", 1000, 25},
		{"100%", 7, 7},
	} {
		var th Threshold
		if err := th.parseScalar(tc.threshold); err != nil {
			t.Fatal(err)
		}
		if got := th.Of(tc.total); got != tc.want {
			t.Errorf("Threshold(%s).Of(%d) = %d, want %d", tc.threshold, tc.total, got, tc.want)
		}
	}
	if got := (Threshold{}).Of(100); got != 0 {
		t.Errorf("unset Threshold.Of(100) = %d, want 0", got)
	}
}

func TestScalarPrinting(t *testing.T) {
	type row struct {
		Limit     Limit
		Threshold Threshold
		Percent   Percent
		Duration  Duration
	}
	rows := []row{
		{Limit{N: 50}, Threshold{Value: 500, Set: true}, Percent{Value: 50, Set: true}, Duration{90 * time.Second}},
		{Limit{Unlimited: true}, Threshold{Percent: true, Value: 10, Set: true}, Percent{Value: 12.5, Set: true}, Duration{720 * time.Hour}},
		{},
	}
	var strs []string
	for _, r := range rows {
		strs = append(strs, strings.Join([]string{r.Limit.String(), r.Threshold.String(), r.Percent.String(), r.Duration.String()}, " "))
	}
	if diff := cmp.Diff([]string{"50 500 50% 1m30s", "unlimited 10% 12.5% 720h0m0s", "0   0s"}, strs); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
	js, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"Limit":50,"Threshold":500,"Percent":"50%","Duration":"1m30s"},` +
		`{"Limit":"unlimited","Threshold":"10%","Percent":"12.5%","Duration":"720h0m0s"},` +
		`{"Limit":0,"Threshold":null,"Percent":null,"Duration":"0s"}]`
	if string(js) != want {
		t.Errorf("JSON:\n%s\nwant\n%s", js, want)
	}
}

func TestScalarParsing(t *testing.T) {
	type result struct {
		Limit     string
		Threshold string
		Percent   string
	}
	for _, tc := range []struct {
		in   string
		want result // String() of what was read, "error" when refused
	}{
		{"0", result{"0", "0", "error"}},
		{"50", result{"50", "50", "50%"}},
		{" 50 ", result{"50", "50", "50%"}},
		{"50%", result{"error", "50%", "50%"}},
		{"0%", result{"error", "0%", "error"}},
		{"100%", result{"error", "100%", "100%"}},
		{"100.5%", result{"error", "error", "error"}},
		{"0.5", result{"error", "error", "0.5%"}},
		{"unlimited", result{"unlimited", "error", "error"}},
		{"Unlimited", result{"unlimited", "error", "error"}},
		{"-1", result{"error", "error", "error"}},
		{"NaN%", result{"error", "error", "error"}},
		{"", result{"error", "error", "error"}},
	} {
		var got result
		var l Limit
		var th Threshold
		var p Percent
		got.Limit, got.Threshold, got.Percent = "error", "error", "error"
		if l.parseScalar(tc.in) == nil {
			got.Limit = l.String()
		}
		if th.parseScalar(tc.in) == nil {
			got.Threshold = th.String()
		}
		if p.parseScalar(tc.in) == nil {
			got.Percent = p.String()
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for spec, ok := range map[string]bool{
		"*/15 * * * *":                   true,
		"0 6 * * 1-5":                    true,
		"@every 15m":                     true,
		"@hourly":                        true,
		"CRON_TZ=UTC 0 6 * * *":          true,
		"0 0 6 * * *":                    false, // no seconds field
		"@every":                         false,
		"@every 0s":                      false,
		"@every -1m":                     false,
		"@every 1s":                      true,
		"0 0 30 2 *":                     false, // never
		"0 0 31 4 *":                     false, // never
		"TZ=UTC":                         false,
		"CRON_TZ=Nowhere/City * * * * *": false,
		"":                               false,
	} {
		if _, err := ParseSchedule(spec); (err == nil) != ok {
			t.Errorf("ParseSchedule(%q) error = %v, want ok=%v", spec, err, ok)
		}
	}
}

// TestScheduleWarnings: a schedule that runs more than once a minute is
// allowed (tests use one), but the configuration says so at its line.
func TestScheduleWarnings(t *testing.T) {
	doc := head + `  - {name: hr2, type: file, path: a.csv, schedule: "@every 10s"}
schedule: "@every 1m"
`
	cfg, err := parse([]byte(doc), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Problems{{Path: "sources[1].schedule", Line: 8, Message: `"@every 10s" runs more than once a minute; fine for tests, heavy for a directory`}}
	if diff := cmp.Diff(want, cfg.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestRetention(t *testing.T) {
	base := "version: 1\nlicensing: {pools: [{name: primary, limit: 5, areas: [primary]}]}\nsources: [{name: hr, type: file, path: hr.csv}]\n"
	cfg, err := ParseWith([]byte(base+"store: {retention: {runs: 90d, audit: 720h}}\n"), "", nil, testPlugins)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Store.Retention; r.Runs.Duration != 90*24*time.Hour || r.Audit.Duration != 720*time.Hour {
		t.Errorf("retention = %+v", r)
	}
	_, err = ParseWith([]byte(base+"store: {retention: {runs: 0d, audit: soon}}\n"), "", nil, testPlugins)
	for _, want := range []string{`store.retention.runs: "0d" is not a number of days such as 90d`, `store.retention.audit: "soon" is not a period such as 90d or 720h`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// TestLicensingKeys: the licence keys are read, their paths resolved
// against the configuration's directory, and a licence whose signature is
// not checked is a warning.
func TestLicensingKeys(t *testing.T) {
	doc := `version: 1
licensing:
  license_file: license.yaml
  license_url: https://licences.vendor.example/acme/license.yaml
  license_tls: {ca_file: /etc/ca.pem}
  pools:
    - {name: primary, limit_from: MAX_USERS, areas: [primary], reserve: 2}
    - {name: extranet, limit: 10, areas: [partners]}
sources: [{name: hr, type: file, path: hr.csv}]
`
	cfg, err := ParseWith([]byte(doc), "/etc/seatsync/seatsync.yaml", nil, testPlugins)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Licensing
	if l.LicenseFile != "/etc/seatsync/license.yaml" || l.LicenseTLS.CAFile != "/etc/ca.pem" || l.PublicKeyFile != "" ||
		l.LicenseURL != "https://licences.vendor.example/acme/license.yaml" {
		t.Errorf("licensing = %+v", l)
	}
	if p := l.Pools[0]; p.LimitFrom != "MAX_USERS" || p.Reserve != 2 {
		t.Errorf("pool = %+v", p)
	}
	want := Problems{{Path: "licensing.license_file", Line: 3,
		Message: "without licensing.public_key_file the licence's signature is not checked: whoever can write the file sets the limits"}}
	if diff := cmp.Diff(want, cfg.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
