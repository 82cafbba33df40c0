package csv

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// pulled is what one Pull produced.
type pulled struct {
	IDs   []model.Identity
	Skips []connector.Skip
}

// writeFile writes content to export.csv in a fresh directory and returns
// its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pull writes content to a file, opens a source for it with cfg and pulls.
func pull(t *testing.T, cfg config.Source, content string) (pulled, string, error) {
	t.Helper()
	cfg.Name, cfg.Type = "hr", "csv"
	settingsOf(&cfg).Path = writeFile(t, content)
	src, err := Open(cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var got pulled
	err = src.Pull(context.Background(),
		func(id model.Identity) error {
			// Every identity says which line it came from; the tables
			// below compare the rest, TestIdentityWhere checks this.
			if id.Where == "" {
				t.Errorf("identity %s has no Where", id.ExternalID)
			}
			id.Where = ""
			got.IDs = append(got.IDs, id)
			return nil
		},
		func(s connector.Skip) { got.Skips = append(got.Skips, s) })
	return got, settingsOf(&cfg).Path, err
}

// settingsOf returns the csv Settings of cfg, giving it fresh ones when it
// has none and a copy otherwise (cases share their literals).
func settingsOf(cfg *config.Source) *Settings {
	set := &Settings{}
	if s, ok := cfg.Settings.(*Settings); ok {
		*set = *s
	}
	cfg.Settings = set
	return set
}

func TestIdentityWhere(t *testing.T) {
	path := writeFile(t, "external_id,username\nE1,a\n\n\"E2\",\"b\"\n")
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	err = src.Pull(context.Background(), func(id model.Identity) error { where = append(where, id.Where); return nil }, func(connector.Skip) {})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"line 2", "line 4"}, where); diff != "" {
		t.Errorf("Where (-want +got):\n%s", diff)
	}
}

func TestPullFullFile(t *testing.T) {
	cfg := config.Source{
		Mapping: map[string]string{
			"external_id": "employee_id",
			"username":    "Login",
			"email":       " mail ",
			"groups":      "teams",
			"enabled":     "active",
		},
		Settings: &Settings{Delimiter: ";"},
	}
	var b strings.Builder
	b.WriteString("\ufeff Employee_ID ;LOGIN;Mail;Given_Name;family_name;Display_Name;title;department;Teams;Active;Address; Cost Center \r\n")
	b.WriteString(`E1;jdoe;jdoe@example.com;John;Doe;"Doe; John";"Head of ""Ops""";Ops;" admins | ops || ";yes;"1 Main St` + "\r\n" + `Springfield";CC1` + "\r\n")
	b.WriteString("\r\n") // empty line: ignored
	b.WriteString(`  E2  ; asmith ;;Ann;Smith;;;;;no;; ` + "\r\n")
	want := []model.Identity{
		{
			ExternalID: "E1", Username: "jdoe", Email: "jdoe@example.com",
			GivenName: "John", FamilyName: "Doe", DisplayName: "Doe; John",
			Title: `Head of "Ops"`, Department: "Ops",
			Groups: []string{"admins", "ops"}, Enabled: true,
			Attributes: map[string]string{"Address": "1 Main St\nSpringfield", "Cost Center": "CC1"},
		},
		{
			ExternalID: "E2", Username: "asmith", GivenName: "Ann", FamilyName: "Smith",
			Enabled:    false,
			Attributes: map[string]string{"Address": "", "Cost Center": ""},
		},
	}
	spellings := []struct {
		value   string
		enabled bool
	}{
		{"yes", true}, {"No", false}, {"TRUE", true}, {"false", false}, {"1", true}, {"0", false},
		{"Active", true}, {"INACTIVE", false}, {"y", true}, {"N", false}, {"  Yes ", true},
	}
	for i, sp := range spellings {
		id := "S" + strconv.Itoa(i)
		b.WriteString(id + ";u" + id + ";;;;;;;;" + sp.value + ";;\r\n")
		want = append(want, model.Identity{
			ExternalID: id, Username: "u" + id, Enabled: sp.enabled,
			Attributes: map[string]string{"Address": "", "Cost Center": ""},
		})
	}

	got, _, err := pull(t, cfg, b.String())
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if diff := cmp.Diff(pulled{IDs: want}, got); diff != "" {
		t.Errorf("Pull (-want +got):\n%s", diff)
	}
}

func TestPullDefaults(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Source
		content string
		want    []model.Identity
	}{
		{
			name:    "header only",
			content: "external_id,username\n",
		},
		{
			name:    "header only, no final newline",
			content: "external_id,username",
		},
		{
			name:    "default mapping, no enabled column: everyone enabled",
			content: "username,External_ID,email\njdoe,E1,j@example.com\n",
			want:    []model.Identity{{ExternalID: "E1", Username: "jdoe", Email: "j@example.com", Enabled: true}},
		},
		{
			name:    "empty lines, blank rows and spreadsheet leftovers are ignored",
			content: "\n\nexternal_id,username,note\n\nE1,jdoe,x\n,,\n   \n , , \n\n",
			want: []model.Identity{
				{ExternalID: "E1", Username: "jdoe", Enabled: true, Attributes: map[string]string{"note": "x"}},
			},
		},
		{
			name:    "spaces before a quoted field",
			content: "external_id, display_name, username\nE1, \"Doe, John\", jdoe\n",
			want:    []model.Identity{{ExternalID: "E1", Username: "jdoe", DisplayName: "Doe, John", Enabled: true}},
		},
		{
			name:    "tab delimiter keeps empty fields",
			cfg:     config.Source{Settings: &Settings{Delimiter: "\t"}},
			content: "external_id\tusername\temail\tdepartment\nE1\t\t\tSales\n",
			want:    []model.Identity{{ExternalID: "E1", Department: "Sales", Enabled: true}},
		},
		{
			name:    "empty and unnamed columns",
			content: "external_id,username,groups,,\nE1,jdoe, | ,a,\n",
			want:    []model.Identity{{ExternalID: "E1", Username: "jdoe", Enabled: true}},
		},
		{
			name: "a column used by two fields is not an attribute",
			cfg: config.Source{Mapping: map[string]string{
				"external_id": "login", "username": "login", "email": "mail",
			}},
			content: "login,mail,username\njdoe,j@example.com,ignored\n",
			want: []model.Identity{{
				ExternalID: "jdoe", Username: "jdoe", Email: "j@example.com", Enabled: true,
				Attributes: map[string]string{"username": "ignored"},
			}},
		},
		{
			name:    "duplicate unmapped column names keep the first",
			content: "external_id,username,phone,Phone,phone\nE1,jdoe,1,2,3\n",
			want: []model.Identity{{
				ExternalID: "E1", Username: "jdoe", Enabled: true,
				Attributes: map[string]string{"phone": "1", "Phone": "2"},
			}},
		},
		{
			name:    "ambiguous optional default column is left to attributes",
			content: "external_id,username,title,Title\nE1,jdoe,a,b\n",
			want: []model.Identity{{
				ExternalID: "E1", Username: "jdoe", Enabled: true,
				Attributes: map[string]string{"title": "a", "Title": "b"},
			}},
		},
		{
			name:    "unicode",
			content: "external_id,username,display_name\nE1,zoë,Zoë Ŝmith 李\n",
			want:    []model.Identity{{ExternalID: "E1", Username: "zoë", DisplayName: "Zoë Ŝmith 李", Enabled: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := pull(t, tt.cfg, tt.content)
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if diff := cmp.Diff(pulled{IDs: tt.want}, got); diff != "" {
				t.Errorf("Pull (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPullBadRows(t *testing.T) {
	const header = "external_id,username,enabled,note\n"
	tests := []struct {
		name    string
		content string // after header, which is line 1
		wantIDs []string
		want    []connector.Skip
	}{
		{
			name:    "wrong number of fields",
			content: "E1,a,yes,x\nE2,b,yes\nE3,c,yes,x,extra\nE4,d,yes,x\n",
			wantIDs: []string{"E1", "E4"},
			want: []connector.Skip{
				{Where: "line 3", Reason: `has 3 fields, the header has 4, so its columns may be shifted (its external_id column reads "E2")`},
				{Where: "line 4", Reason: `has 5 fields, the header has 4, so its columns may be shifted (its external_id column reads "E3")`},
			},
		},
		{
			name:    "bare quote in the middle of the file",
			content: "E1,a,yes,x\nE2,b,yes,5\" screen\nE3,c,yes,x\nE4,d,no,\"quoted, fine\"\n",
			wantIDs: []string{"E1", "E3", "E4"},
			want: []connector.Skip{{
				ExternalID: "E2", Where: "line 3",
				Reason: `malformed quote in column "note" at position 11: " inside an unquoted field (quote the field and double the ")`,
			}},
		},
		{
			name:    "text after a closing quote",
			content: "E1,a,yes,x\nE2,\"b\"x,yes,x\nE3,c,yes,x\n",
			wantIDs: []string{"E1", "E3"},
			want: []connector.Skip{{
				ExternalID: "E2", Where: "line 3",
				Reason: `malformed quote in column "username" at position 6: a quoted field must end with " before the delimiter or the line end, and a " inside it must be doubled`,
			}},
		},
		{
			name:    "empty external_id",
			content: "E1,a,yes,x\n  ,b,yes,x\n\"\",c,yes,x\nE4,d,yes,x\n",
			wantIDs: []string{"E1", "E4"},
			want: []connector.Skip{
				{Where: "line 3", Reason: `empty external_id (column "external_id")`},
				{Where: "line 4", Reason: `empty external_id (column "external_id")`},
			},
		},
		{
			name:    "invalid enabled values",
			content: "E1,a,maybe,x\nE2,b,,x\nE3,c,disabled,x\nE4,d,Y,x\n",
			wantIDs: []string{"E4"},
			want: []connector.Skip{
				{ExternalID: "E1", Where: "line 2", Reason: `invalid enabled value "maybe" in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
				{ExternalID: "E2", Where: "line 3", Reason: `invalid enabled value "" in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
				{ExternalID: "E3", Where: "line 4", Reason: `invalid enabled value "disabled" in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
			},
		},
		{
			name:    "duplicate external_id",
			content: "E1,a,yes,x\nE2,b,yes,x\n E1 ,c,yes,x\nE3,d,yes,x\nE1,e,yes,x\n",
			wantIDs: []string{"E1", "E2", "E3"},
			want: []connector.Skip{
				{ExternalID: "E1", Where: "line 4", Reason: `duplicate external_id "E1" (first on line 2)`},
				{ExternalID: "E1", Where: "line 6", Reason: `duplicate external_id "E1" (first on line 2)`},
			},
		},
		{
			name:    "a skipped row still claims its external_id",
			content: "E1,a,maybe,x\nE1,b,yes,x\n",
			want: []connector.Skip{
				{ExternalID: "E1", Where: "line 2", Reason: `invalid enabled value "maybe" in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
				{ExternalID: "E1", Where: "line 3", Reason: `duplicate external_id "E1" (first on line 2)`},
			},
		},
		{
			name:    "invalid UTF-8",
			content: "E1,a,yes,x\nE2,M\xfcller,yes,x\nE\xff,c,yes,x\nE4,d,yes,Caf\xe9\nE5,e,yes,x\n",
			wantIDs: []string{"E1", "E5"},
			want: []connector.Skip{
				{ExternalID: "E2", Where: "line 3", Reason: `invalid UTF-8 in column "username" (export the file as UTF-8)`},
				{Where: "line 4", Reason: `invalid UTF-8 in column "external_id" (export the file as UTF-8)`},
				{ExternalID: "E4", Where: "line 5", Reason: `invalid UTF-8 in column "note" (export the file as UTF-8)`},
			},
		},
		{
			name:    "line numbers are physical lines",
			content: "E1,a,yes,\"two\nlines\"\n\n,,,\nE2,b,nope,x\r\nE3,c,yes,\"x\r\ny\r\nz\"\r\nE4,d\r\n",
			wantIDs: []string{"E1", "E3"},
			want: []connector.Skip{
				{ExternalID: "E2", Where: "line 6", Reason: `invalid enabled value "nope" in column "enabled" (use yes/no, true/false, 1/0, active/inactive or y/n)`},
				{Where: "line 10", Reason: `has 2 fields, the header has 4, so its columns may be shifted (its external_id column reads "E4")`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := pull(t, config.Source{}, header+tt.content)
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			checkIDs(t, got, tt.wantIDs)
			if diff := cmp.Diff(tt.want, got.Skips); diff != "" {
				t.Errorf("skips (-want +got):\n%s", diff)
			}
		})
	}
}

// A quote that is opened and not closed takes in the rows after it. The
// pull must fail rather than lose them.
func TestPullSwallowedRows(t *testing.T) {
	const header = "external_id,username,enabled,note\n"
	const tail = "; a quote is probably not closed and has swallowed the rows after it, so the file cannot be read reliably"
	tests := []struct {
		name    string
		content string
		want    string // after "PATH: "
	}{
		{
			name:    "unterminated quote runs to the end of the file",
			content: "E1,a,yes,x\nE2,\"b,yes,x\nE3,c,yes,x\nE4,d,yes,x\n",
			want:    "line 3: the record starting here runs on to line 5 and has a malformed quote on line 5" + tail,
		},
		{
			name:    "unterminated quote runs to a later quoted field",
			content: "E1,a,yes,x\nE2,b,yes,\"x\nE3,c,yes,x\nE4,d,yes,\"quoted\"\nE5,e,yes,x\n",
			want:    "line 3: the record starting here runs on to line 5 and has a malformed quote on line 5" + tail,
		},
		{
			name:    "swallowed rows make the field count wrong",
			content: "E1,a,yes,x\nE2,b,yes,\"x\nE3,c,yes,x\",\nE4,d,yes,x\n",
			want:    "line 3: the record starting here runs on to line 4 and has 5 fields, the header has 4" + tail,
		},
		{
			name:    "quote not closed on the last line",
			content: "E1,a,yes,x\nE2,\"b,yes,x\n",
			want: "line 3: a quote opened on this line is not closed before the end of the file: " +
				"the file looks cut off (is it still being written, or was it copied incompletely?), or the quote is not closed",
		},
		{
			name:    "swallowed rows fit the field count",
			content: "E1,a,yes,x\nE2,\"b,yes,x\nE3,c\",yes,x\nE4,d,yes,x\n",
			want:    `line 3: the record starting here runs on to line 4 and column "username" has a line break` + tail,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path, err := pull(t, config.Source{}, header+tt.content)
			if err == nil {
				t.Fatal("Pull succeeded, want an error")
			}
			if got, want := err.Error(), path+": "+tt.want; got != want {
				t.Errorf("Pull error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestPullErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Source
		content string
		want    string // after "PATH: "
	}{
		{
			name:    "missing required columns",
			content: "id,login,mail\nE1,jdoe,j@example.com\n",
			want: `header: no column "external_id" for external_id (name its column with mapping.external_id); ` +
				`no column "username" for username (name its column with mapping.username); ` +
				`the header has 3 columns: "id", "login", "mail"`,
		},
		{
			name:    "mapping names a column not in the header",
			cfg:     config.Source{Mapping: map[string]string{"external_id": "employee_id", "username": "login", "groups": "teams"}},
			content: "id,login,mail\n",
			want: `header: mapping.external_id: no column "employee_id"; mapping.groups: no column "teams"; ` +
				`the header has 3 columns: "id", "login", "mail"`,
		},
		{
			name:    "a ;-separated export read with the default delimiter",
			cfg:     config.Source{Mapping: map[string]string{"external_id": "employee_id", "username": "login"}},
			content: "employee_id;login;mail\nE1;jdoe;j@example.com\n",
			want: `header: mapping.external_id: no column "employee_id"; mapping.username: no column "login"; ` +
				`the header has 1 columns: "employee_id;login;mail" (did you mean delimiter: ";"?)`,
		},
		{
			name:    "mapped column twice in the header",
			cfg:     config.Source{Mapping: map[string]string{"external_id": "id"}},
			content: "id,username,ID\n",
			want:    `header: column "id" for external_id appears 2 times; the header has 3 columns: "id", "username", "ID"`,
		},
		{
			name:    "empty file",
			content: "",
			want:    "the file is empty, it has no header row",
		},
		{
			name:    "only empty lines",
			content: "\n\r\n\n",
			want:    "the file is empty, it has no header row",
		},
		{
			name:    "UTF-16",
			content: "\xff\xfee\x00x\x00",
			want:    "the file is UTF-16 encoded; export it as UTF-8 CSV",
		},
		{
			name:    "header not UTF-8",
			content: "external_id,user\xfcname\n",
			want:    "header: column 2 is not valid UTF-8; export the file as UTF-8 CSV",
		},
		{
			name:    "a quote in the header swallows the first row",
			content: "\nexternal_id,username,\"note\nE1,a,x\"\nE2,b,y\n",
			want: "header: the header starting on line 2 runs on to line 3 in a quoted column name; " +
				"a quote is probably not closed and has swallowed the rows after it, so the file cannot be read reliably",
		},
		{
			name:    "malformed quote in the header",
			content: "external_id,\"username\n",
			want:    `header: parse error on line 1, column 23: extraneous or missing " in quoted-field`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, path, err := pull(t, tt.cfg, tt.content)
			if err == nil {
				t.Fatalf("Pull succeeded with %+v, want an error", got)
			}
			if got, want := err.Error(), path+": "+tt.want; got != want {
				t.Errorf("Pull error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestPullMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "export.csv")
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Pull(context.Background(),
		func(model.Identity) error { t.Error("emit called"); return nil },
		func(connector.Skip) { t.Error("skip called") })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Pull error %v, want fs.ErrNotExist", err)
	}
	if got, want := err.Error(), "open "+path+": no such file or directory"; got != want {
		t.Errorf("Pull error %q, want %q", got, want)
	}

	dir := t.TempDir()
	src, err = Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Pull(context.Background(), func(model.Identity) error { return nil }, func(connector.Skip) {})
	if got, want := errString(err), dir+": is a directory, not a CSV file"; got != want {
		t.Errorf("Pull error %q, want %q", got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Source
		want string // "" for no error
	}{
		{name: "minimal", cfg: config.Source{Settings: &Settings{Path: "/srv/hr/export.csv"}}},
		{name: "semicolon", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: ";"}}},
		{name: "tab", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: "\t"}}},
		{name: "multibyte", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: "§"}}},
		{name: "every field", cfg: config.Source{Mapping: map[string]string{
			"external_id": "a", "username": "b", "email": "c", "given_name": "d", "family_name": "e",
			"display_name": "f", "title": "g", "department": "h", "groups": "i", "enabled": "j",
		}, Settings: &Settings{Path: "x.csv"}}},
		{name: "no path", cfg: config.Source{Settings: &Settings{}}, want: "source hr: path: required (the CSV file to read)"},
		{name: "two characters", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: ";;"}}, want: `source hr: delimiter: ";;" must be one character`},
		{name: "backslash t", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: `\t`}}, want: `source hr: delimiter: "\t" is two characters; for a tab write "\t" in double quotes`},
		{name: "quote", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: `"`}}, want: `source hr: delimiter: "\"" cannot be used as a delimiter`},
		{name: "newline", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: "\n"}}, want: `source hr: delimiter: "\n" cannot be used as a delimiter`},
		{name: "invalid UTF-8", cfg: config.Source{Settings: &Settings{Path: "x.csv", Delimiter: "\xff"}}, want: `source hr: delimiter: "\xff" cannot be used as a delimiter`},
		{
			name: "every problem at once",
			cfg: config.Source{Mapping: map[string]string{
				"external_id": "id", "mail": "email", "username": " ", "userName": "login",
			}, Settings: &Settings{Delimiter: "ab"}},
			want: `source hr: path: required (the CSV file to read); delimiter: "ab" must be one character; ` +
				`mapping.mail: unknown identity field (one of external_id, username, email, given_name, family_name, display_name, title, department, groups, enabled); ` +
				`mapping.userName: unknown identity field (one of external_id, username, email, given_name, family_name, display_name, title, department, groups, enabled); ` +
				`mapping.username: empty value`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.Type = "hr", "csv"
			_, err := Open(tt.cfg, zap.NewNop())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if got := errString(err); got != tt.want {
				t.Errorf("Open error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

// rows returns a header and n good rows.
func rows(n int) string {
	var b strings.Builder
	b.WriteString("external_id,username\n")
	for i := range n {
		b.WriteString("E" + strconv.Itoa(i) + ",u" + strconv.Itoa(i) + "\n")
	}
	return b.String()
}

func TestPullContext(t *testing.T) {
	path := writeFile(t, rows(10000))
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		err := src.Pull(ctx, func(model.Identity) error { n++; return nil }, func(connector.Skip) {})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Pull error %v, want context.Canceled", err)
		}
		if n != 0 {
			t.Errorf("emitted %d identities, want 0", n)
		}
	})

	t.Run("cancelled during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		err := src.Pull(ctx, func(model.Identity) error {
			if n++; n == 10 {
				cancel()
			}
			return nil
		}, func(connector.Skip) {})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Pull error %v, want context.Canceled", err)
		}
		if !strings.HasPrefix(errString(err), path+": stopped after ") {
			t.Errorf("Pull error %q does not name the file", errString(err))
		}
		if n >= 10000 || n > 10+ctxEvery {
			t.Errorf("emitted %d identities after cancel at 10", n)
		}
	})

	t.Run("emit error stops the pull", func(t *testing.T) {
		stop := errors.New("store is full")
		n := 0
		err := src.Pull(context.Background(), func(model.Identity) error { n++; return stop }, func(connector.Skip) {})
		if err != stop {
			t.Errorf("Pull error %v, want the emit error itself", err)
		}
		if n != 1 {
			t.Errorf("emit called %d times, want 1", n)
		}
	})
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    int
		wantErr string // after "PATH: "
	}{
		{name: "header only", content: "external_id,username\n", want: 0},
		{name: "good rows", content: rows(1234), want: 1234},
		{
			name:    "bad rows are not counted",
			content: "external_id,username,enabled\nE1,a,yes\nE2,b\nE3,c,maybe\n\n,,\nE1,d,no\nE4,\"e\"x,no\nE5,f,no\n",
			want:    2,
		},
		{name: "missing column", content: "id,username\n", wantErr: `header: no column "external_id" for external_id (name its column with mapping.external_id); the header has 2 columns: "id", "username"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, err := connector.Check(context.Background(), src)
			if tt.wantErr != "" {
				if got, want := errString(err), path+": "+tt.wantErr; got != want {
					t.Errorf("Check error\n got: %s\nwant: %s", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if n != tt.want {
				t.Errorf("Check = %d, want %d", n, tt.want)
			}
		})
	}
}

func TestPullLogsCounts(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	path := writeFile(t, "external_id,username\nE1,a\nE2\n\n,\nE3,c\n")
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Pull(context.Background(), func(model.Identity) error { return nil }, func(connector.Skip) {}); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("csv file read").AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("got %d summary lines, want 1: %v", len(entries), logs.AllUntimed())
	}
	got := entries[0].ContextMap()
	delete(got, "took")
	// The caller's logger names the source; the connector adds the rest.
	want := map[string]any{
		"path": path,
		"rows": int64(4), "identities": int64(2), "skipped": int64(1), "blank": int64(1),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary fields (-want +got):\n%s", diff)
	}
}

// checkIDs compares the external ids a pull emitted, in order.
func checkIDs(t *testing.T, got pulled, want []string) {
	t.Helper()
	var ids []string
	for _, id := range got.IDs {
		ids = append(ids, id.ExternalID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("emitted external_ids (-want +got):\n%s", diff)
	}
}
