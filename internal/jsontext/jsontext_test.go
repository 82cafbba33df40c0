package jsontext

import (
	"bytes"
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

// The Indenter gives what json.Indent gives, however the input is cut.
func TestIndenterMatchesIndent(t *testing.T) {
	docs := []string{`{}`, `[]`, `{"a":1}`, `{"a":[],"b":{},"c":[1,2,{"d":"x,y:{}[]\"\\"}],"e":null}`,
		`[{"k":"v"},[],[[]],"s",1.5e3,true]`, `"plain"`, `{"nested":{"deeper":{"deepest":[1]}}}`}
	for _, doc := range docs {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(doc), "", "  "); err != nil {
			t.Fatal(err)
		}
		for cut := 1; cut <= len(doc); cut++ {
			var got bytes.Buffer
			d := NewIndenter(&got)
			for i := 0; i < len(doc); i += cut {
				d.Write([]byte(doc[i:min(i+cut, len(doc))]))
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Fatalf("%s in pieces of %d:\n%s\nwant\n%s", doc, cut, got.String(), want.String())
			}
		}
	}
}

func FuzzIndenter(f *testing.F) {
	f.Add(`{"a":[1,{"b":"c"}],"d":{}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(doc)) != nil {
			return
		}
		var want, got bytes.Buffer
		if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
			return
		}
		d := NewIndenter(&got)
		d.Write(compact.Bytes())
		d.Close()
		if got.String() != want.String() {
			t.Fatalf("%q: got\n%s\nwant\n%s", compact.String(), got.String(), want.String())
		}
	})
}
