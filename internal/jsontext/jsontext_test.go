package jsontext

import (
	"encoding/json"
	"testing"
)

// With html, the output is json.Marshal's, byte for byte; without, it is
// JSON that decodes to what json.Marshal's output decodes to.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, "\x00\x08\x0c\x1f\x7f", "R&D <x>", "\u2028\u2029", "é", "\xff", "\xe2\x82", "a\tb\nc\rd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s, true); string(got) != string(want) {
			t.Fatalf("AppendString(%q, html) = %s, want %s", s, got, want)
		}
		var got, wantDecoded string
		plain := AppendString(nil, s, false)
		if err := json.Unmarshal(plain, &got); err != nil {
			t.Fatalf("AppendString(%q) = %s, not JSON: %v", s, plain, err)
		}
		_ = json.Unmarshal(want, &wantDecoded)
		if got != wantDecoded {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, wantDecoded)
		}
	})
}

func TestAppendStrings(t *testing.T) {
	for _, ss := range [][]string{nil, {}, {"a"}, {"a", "b<c>", "\xff"}} {
		want, _ := json.Marshal(ss)
		if ss == nil {
			want = []byte("[]")
		}
		if got := AppendStrings(nil, ss, true); string(got) != string(want) {
			t.Errorf("AppendStrings(%q) = %s, want %s", ss, got, want)
		}
	}
}
