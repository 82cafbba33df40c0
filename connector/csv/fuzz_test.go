package csv

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// FuzzRead feeds arbitrary file contents to the reader, with "," and ";"
// as the delimiter. Whatever the bytes, it must not panic, and what it
// emits must be usable: a non-empty, unique, valid UTF-8 external_id, and
// no line break in a mapped field.
func FuzzRead(f *testing.F) {
	seeds := []string{
		"",
		"external_id,username\n",
		"\ufeffexternal_id,username,enabled,groups,note\nE1,jdoe,yes,a|b| ,x\nE2,asmith,no,,\"multi\nline\"\n",
		"external_id;username;display_name\r\nE1;jdoe;\"Doe; \"\"JD\"\" John\"\r\n\r\nE2;x;y\r\n",
		"external_id,username\nE1,a\nE2,\"b\nE3,c\nE4,d\n",
		"external_id,username\nE1,a\nE2,\"b\nE3,c\",\nE4,d\n",
		"external_id,username\nE1,a\nE2,b\"c\nE3,c\n",
		"external_id,username\nE1,a\nE1,b\n E1 ,c\n,d\n\"\",e\n",
		"external_id,username,enabled\nE1,a,maybe\nE2,b,Y\nE3,c,\n",
		"external_id,username\nE\xff,a\nE2,\xc3\x28\n",
		"external_id,username\n,,,\n;;;\n   \n\n\n",
		"\xff\xfee\x00x\x00",
		"external_id,username,external_id\nE1,a,E2\n",
		"username,external_id\n\"a\r\nb\",E1\n",
		"external_id,username\n\"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, delim := range []string{",", ";"} {
			src, err := Open(config.Source{Name: "fuzz", Type: "csv", Settings: &Settings{Path: "fuzz.csv", Delimiter: delim}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			seen := make(map[string]bool)
			emit := func(id model.Identity) error {
				if id.ExternalID == "" {
					t.Fatalf("emitted an identity without external_id: %+v", id)
				}
				if seen[id.ExternalID] {
					t.Fatalf("emitted external_id %q twice", id.ExternalID)
				}
				seen[id.ExternalID] = true
				for _, v := range []string{id.ExternalID, id.Username, id.Email, id.GivenName, id.FamilyName,
					id.DisplayName, id.Title, id.Department} {
					if !utf8.ValidString(v) || strings.Contains(v, "\n") {
						t.Fatalf("emitted a field that is not one line of UTF-8: %q", v)
					}
				}
				return nil
			}
			skip := func(s connector.Skip) {
				if !strings.HasPrefix(s.Where, "line ") || s.Reason == "" {
					t.Fatalf("skip without a line or a reason: %+v", s)
				}
			}
			_, _ = src.(*source).read(context.Background(), bytes.NewReader(data), emit, skip)
		}
	})
}
