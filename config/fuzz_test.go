package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it refuses
// it refuses with Problems that have lines. The seeds (the testdata files
// and the broken documents below) run in every `go test`; run
// `go test -fuzz FuzzParse ./config/` to search further.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"",
		"~",
		"---\n---\n",
		"version: 1\n",
		"version: [1",
		"version: 1\n\tstore: {}\n",
		"- a\n- b\n",
		"version: &v 1\nschedule: *v\n",
		"version: 1\nstore: &s {<<: *s}\n",
		"version: 1\nsources: &s [*s, *s]\n",
		"version: 1\nlicensing: {pools: [{<<: [*x]}]}\n",
		"version: 1\nlicensing: &l {pools: [{<<: *l}], exempt: [*l]}\n",
		"version: 1\n? [a, b]\n: c\n",
		"version: 1\n<<: 5\n",
		"version: 1\nlog: {level: ${X}, format: $${Y}}\n",
		"version: 1\nlog: {level: \"${\"}\n",
		"version: 1\nschedule: \"TZ=\"\n",
		"version: 1\nschedule: \"CRON_TZ=UTC\"\n",
		"version: 1\nsources: [{name: a, type: dir, url: [\"ldap://[::1\"]}]\n",
		"version: 1\nsources: [{name: a, type: file, delimiter: \"\\xff\"}]\n",
		"version: 1\nsources: [{name: a, type: api, token_file: \"\"}]\n",
		"version: 1\nsources: [{name: a, type: api, token_file: testdata}]\n",
		"version: 99999999999999999999\n",
		"version: !!binary aGVsbG8=\n",
		"\xef\xbb\xbfversion: 1\n",
		"\xff\xfev\x00",
		"version: 1\nlicensing: {pools: [{name: p, limit: 1e400, areas: [a]}]}\n",
		"version: 1\nsafety: {max_deprovision: \"1e400%\"}\n",
	} {
		f.Add(s)
	}
	env := testEnv(map[string]string{"X": "x", "AD_PASSWORD": "a", "OKTA_API_TOKEN": "o", "SMTP_PASSWORD": "s", "SEATSYNC_API_TOKEN": "t"})
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := ParseWith([]byte(doc), "testdata/fuzz.yaml", env, testPlugins)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("error %T is not Problems: %v", err, err)
		}
		if len(ps) == 0 {
			t.Fatal("empty Problems")
		}
		for _, p := range ps {
			if p.Line < 0 || p.Message == "" {
				t.Errorf("bad problem %+v", p)
			}
			if cfg != nil && cfg.Line(p.Path) < 0 {
				t.Errorf("Line(%q) < 0", p.Path)
			}
		}
	})
}
