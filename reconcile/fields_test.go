package reconcile

import (
	"encoding/json"
	"testing"
)

// The hand-written encoder must agree with encoding/json byte for byte.
func TestFieldsMarshalJSONMatchesEncodingJSON(t *testing.T) {
	f := Fields{
		"email":        {Old: nil, New: "jdoe@example.com"},
		"given_name":   {Old: "Jo\"hn\\", New: "Jöhn <&> \u2028\u2029 \x01\t\n\r"},
		"groups":       {Old: []string{"a", "b"}, New: []string{}},
		"attributes.x": {Old: "bad \xff utf8", New: nil},
	}
	got, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string]FieldChange(f)
	want, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("Fields JSON\n got: %s\nwant: %s", got, want)
	}
	if string(mustJSON(t, Fields(nil))) != "null" {
		t.Error("nil Fields is not null")
	}
}

func FuzzFieldsMarshalJSON(f *testing.F) {
	f.Add("name", "old", "new")
	f.Add("a\x00", "\xff\xfe", "\u2028<script>")
	f.Fuzz(func(t *testing.T, k, o, n string) {
		fields := Fields{k: {Old: o, New: []string{n, o}}}
		got := mustJSON(t, fields)
		want := mustJSON(t, map[string]FieldChange(fields))
		if string(got) != string(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
