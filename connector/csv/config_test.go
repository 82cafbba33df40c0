package csv_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/internal/configtest"
)

// head is a valid configuration; cases append sources.
const head = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners, suppliers]}
sources:
  - {name: hr, type: csv, path: hr.csv}
`

var plugins = config.Plugins{Sources: connector.Registry{"csv": csvsource.Kind}.Kinds()}

func TestConfigProblems(t *testing.T) {
	for name, doc := range map[string]string{
		"csv": head + `  - {name: hr2, type: csv}  # want sources[1].path "required for a csv source"
  - name: hr3
    type: csv
    path: a.csv
    delimiter: ";;"  # want sources[2].delimiter "\";;\" is not one character"
  - {name: hr4, type: csv, path: a.csv, delimiter: '"'}  # want sources[3].delimiter "cannot be the delimiter"
  - {name: hr5, type: csv, path: a.csv, delimiter: "\n"}  # want sources[4].delimiter "cannot be the delimiter"
  - {name: hr6, type: csv, path: a.csv, delimiter: "\t"}
  - {name: hr7, type: csv, path: a.csv, delimiter: "§"}`,
		"duplicate key": head + `  - name: hr2
    type: csv
    path: a.csv
    path: b.csv  # want sources[1].path "duplicate key (first set on line 10)"`,
		"unset variable": head + `  - name: hr2
    type: csv
    path: ${HR_DIR}/hr.csv  # want sources[1].path "environment variable HR_DIR is not set"`,
		"unknown key": head + `  - name: hr2
    type: csv
    path: a.csv
    delimeter: ";"  # want sources[1].delimeter "unknown key (did you mean delimiter?)"`,
	} {
		t.Run(name, func(t *testing.T) { configtest.Check(t, doc, plugins, nil) })
	}
}

func TestConfigDefaults(t *testing.T) {
	doc := head + "  - {name: hr2, type: csv, path: /abs/hr.csv, delimiter: ${DELIM}}\n"
	for _, tc := range []struct {
		configPath string
		want       []csvsource.Settings
	}{
		{"/etc/seatsync/seatsync.yaml", []csvsource.Settings{{Path: "/etc/seatsync/hr.csv", Delimiter: ","}, {Path: "/abs/hr.csv", Delimiter: ";"}}},
		{"", []csvsource.Settings{{Path: "hr.csv", Delimiter: ","}, {Path: "/abs/hr.csv", Delimiter: ";"}}},
	} {
		cfg, err := config.ParseWith([]byte(doc), tc.configPath, configtest.Env(map[string]string{"DELIM": ";"}), plugins)
		if err != nil {
			t.Fatal(err)
		}
		var got []csvsource.Settings
		for _, s := range cfg.Sources {
			got = append(got, *s.Settings.(*csvsource.Settings))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("config at %q (-want +got):\n%s", tc.configPath, diff)
		}
	}
}
