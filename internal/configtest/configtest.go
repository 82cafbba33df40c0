// Package configtest checks what the configuration loader reports for a
// file, for the tests of the packages that plug their types into it.
//
// A case is a YAML document whose expectations are written into it as
// comments, `# want PATH "message fragment"`, on the line the problem must
// be reported on.
package configtest

import (
	"cmp"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
)

var wantRE = regexp.MustCompile(`# want (\S+) ("(?:[^"\\]|\\.)*")`)

// Wanted returns the problems a document announces, in the order the
// loader sorts them (by line, then path).
func Wanted(doc string) config.Problems {
	var ps config.Problems
	for i, line := range strings.Split(doc, "\n") {
		for _, m := range wantRE.FindAllStringSubmatch(line, -1) {
			path, err := strconv.Unquote(m[1])
			if err != nil {
				path = m[1]
			}
			msg, err := strconv.Unquote(m[2])
			if err != nil {
				panic("bad want comment: " + line)
			}
			ps = append(ps, config.Problem{Path: path, Line: i + 1, Message: msg})
		}
	}
	slices.SortStableFunc(ps, func(a, b config.Problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return ps
}

// Env looks variables up in vars.
func Env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// Check parses doc as /nonexistent/seatsync/seatsync.yaml with plugins and
// env, and checks that it reports exactly the problems doc announces (each
// message containing its fragment), and that no problem shows a value of
// env whose name contains SECRET.
func Check(t *testing.T, doc string, plugins config.Plugins, env map[string]string) {
	t.Helper()
	cfg, err := config.ParseWith([]byte(doc), "/nonexistent/seatsync/seatsync.yaml", Env(env), plugins)
	want := Wanted(doc)
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Parse: unexpected error:\n%v", err)
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return
	}
	var got config.Problems
	if !errors.As(err, &got) {
		t.Fatalf("Parse error = %v (%T), want Problems", err, err)
	}
	// Messages must contain the expected fragment; compare the fragment
	// so the diff shows everything else exactly.
	got = append(config.Problems(nil), got...)
	for i := range got {
		if i < len(want) && strings.Contains(got[i].Message, want[i].Message) {
			got[i].Message = want[i].Message
		}
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s\nfull error:\n%v", diff, err)
	}
	for name, v := range env {
		if strings.Contains(name, "SECRET") && v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error shows the secret %s:\n%v", name, err)
		}
	}
}
