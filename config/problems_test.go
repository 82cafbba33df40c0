package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// head is a valid configuration; cases append sources or top-level keys.
const head = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners, suppliers]}
sources:
  - {name: hr, type: file, path: hr.csv}
`

// wantRE matches the expectations written into a case's YAML as comments:
// `# want PATH "message fragment"` on the line the problem must be reported on.
var wantRE = regexp.MustCompile(`# want (\S+) ("(?:[^"\\]|\\.)*")`)

// wanted returns the problems a case's YAML announces, in the order Parse
// sorts them.
func wanted(doc string) Problems {
	var ps Problems
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
			ps = append(ps, Problem{Path: path, Line: i + 1, Message: msg})
		}
	}
	sortProblems(ps)
	return ps
}

func testEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		// The decoder: keys, types, variables and secret files.
		{"unknown top-level key", head + `stroe: {driver: sqlite}  # want stroe "unknown key (did you mean store?)"`},
		{"unknown top-level key, no near match", head + `colour: blue  # want colour "unknown key (known keys: licensing, log, notify, safety, schedule, server, sources, store, targets, version)"`},
		{"unknown key, no near match", head + `log:
  colour: true  # want log.colour "unknown key (known keys: format, level)"`},
		{"unknown source key with a typo", head + `  - name: ad
    type: dir
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${SECRET}
    bind_pasword: x  # want sources[1].bind_pasword "did you mean bind_password?"`},
		{"duplicate key", head + `  - name: hr2
    type: file
    path: a.csv
    path: b.csv  # want sources[1].path "duplicate key (first set on line 10)"`},
		{"duplicate top-level key", head + `log: {level: info}
log: {level: debug}  # want log "duplicate key (first set on line 8)"`},
		{"key of another source type", head + `  - name: hr2
    type: file
    path: a.csv
    org_url: https://example.okta.com  # want sources[1].org_url "not a setting of a file source (it is for api)"`},
		{"secret file key of another source type", head + `  - name: hr2
    type: file
    path: a.csv
    token_file: token.txt  # want sources[1].token_file "not a setting of a file source (it is for api)"`},
		{"key of two other source types", head + `  - name: hr2
    type: file
    path: a.csv
    timeout: 5s  # want sources[1].timeout "not a setting of a file source (it is for api and dir)"`},
		{"dir key on an api source", head + `  - name: okta
    type: api
    org_url: https://example.okta.com
    token: ${SECRET}
    page_size: 100  # want sources[1].page_size "not a setting of an api source (it is for dir)"`},
		{"unset variable", head + `  - name: hr2
    type: file
    path: ${HR_DIR}/hr.csv  # want sources[1].path "environment variable HR_DIR is not set"`},
		{"two unset variables in one value", head + `  - name: hr2
    type: file
    path: ${A1}/${A2}  # want sources[1].path "A1 is not set" # want sources[1].path "A2 is not set"`},
		{"bad run_on_start", head + `server:
  run_on_start: sometimes  # want server.run_on_start "\"sometimes\" is not one of auto, always, never"`},
		{"zero shutdown_timeout", head + `server:
  shutdown_timeout: 0s  # want server.shutdown_timeout "must be more than 0"`},
		{"bad shutdown_timeout", head + `server:
  shutdown_timeout: soon  # want server.shutdown_timeout "not a duration"`},
		{"short leader_check", head + `server:
  leader_check: 200ms  # want server.leader_check "200ms is shorter than the shortest check, 1s"`},
		{"zero leader_check", head + `server:
  leader_check: 0s  # want server.leader_check "0s is shorter than the shortest check, 1s"`},
		{"unset variable in a secret", head + `server:
  token: ${API_TOKEN}  # want server.token "environment variable API_TOKEN is not set"`},
		{"not a variable name", head + `log:
  level: ${1LEVEL}  # want log.level "${1LEVEL} is not a variable reference"`},
		{"unclosed variable", head + `log:
  level: "${LEVEL"  # want log.level "${ is not closed by }"`},
		{"secret and its file both set", head + `server:
  token: ${SECRET}
  token_file: token.txt  # want server.token_file "token is also set; give only one of token and token_file"`},
		{"unreadable secret file", head + `server:
  token_file: missing-token.txt  # want server.token_file "cannot read /nonexistent/seatsync/missing-token.txt: no such file or directory"`},
		{"empty secret file name", head + `server:
  token_file: ""  # want server.token_file "the file name is empty"`},
		{"merge of a scalar", head + `log:
  <<: info  # want log "<< merges a mapping or a list of mappings, not a single value"`},
		{"merge of a list of scalars", head + `log:
  <<: [{level: info}, debug]  # want log "<< merges mappings, not a single value"`},
		{"key that is not a string", head + `log:
  ? [level]  # want log "a key must be a plain string, not a list"
  : info`},
		{"unknown key from a merged mapping", head + `x: &common {levle: debug}  # want x "unknown key" # want log.levle "unknown key (did you mean level?)"
log:
  <<: *common`},
		{"not a number", head + `  - name: ad
    type: dir
    url: ldaps://dc1
    base_dn: dc=corp
    page_size: many  # want sources[1].page_size "\"many\" is not a whole number"`},
		{"not a boolean", head + `  - name: hr2
    type: file
    path: a.csv
    adopt: yes  # want sources[1].adopt "\"yes\" is not true or false"`},
		{"scalar where a list belongs", head + `  - name: hr2
    type: file
    path: a.csv
    groups: Staff  # want sources[1].groups "expected a list, got a single value"`},
		{"list where a mapping belongs", head + `store: [sqlite]  # want store "expected a mapping (key: value), got a list"`},
		{"mapping where a string belongs", head + `log:
  level: {name: info}  # want log.level "expected a string, got a mapping"`},
		{"bad limit", `version: 1
licensing:
  pools:
    - {name: primary, limit: lots, areas: [primary]}  # want licensing.pools[0].limit "\"lots\" is not a number of seats"
sources:
  - {name: hr, type: file, path: hr.csv}`},
		{"negative limit", `version: 1
licensing:
  pools:
    - name: primary
      limit: -1  # want licensing.pools[0].limit "\"-1\" is not a number of seats (0 or more)"
      areas: [primary]
sources:
  - {name: hr, type: file, path: hr.csv}`},
		{"bad threshold", head + `safety:
  max_deprovision: 120%  # want safety.max_deprovision "\"120%\" is not a percentage from 0% to 100%"`},
		{"fractional count", head + `safety:
  max_deprovision: 2.5  # want safety.max_deprovision "\"2.5\" is not a count"`},
		{"bad duration", head + `  - name: hr2
    type: file
    path: a.csv
    delete_after: 30d  # want sources[1].delete_after "\"30d\" is not a duration such as 90s"`},
		{"negative duration", head + `  - name: hr2
    type: file
    path: a.csv
    delete_after: -1h  # want sources[1].delete_after "\"-1h\" is negative"`},
		{"zero percent", head + `  - name: okta
    type: api
    org_url: https://example.okta.com
    token: ${SECRET}
    rate_limit_share: 0%  # want sources[1].rate_limit_share "\"0%\" is not a percentage above 0% and up to 100%"`},

		// version and store
		{"version missing", `licensing:  # want version "required: write version: 1"
  pools: [{name: primary, limit: 10, areas: [primary]}]
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"version 2", strings.Replace(head, "version: 1", `version: 2  # want version "2 is not a supported version"`, 1)},
		{"store driver", head + `store:
  driver: mysql  # want store.driver "\"mysql\" is not one of sqlite, postgres"`},
		{"postgres without dsn", head + `store:  # want store.dsn "required when driver is postgres (or dsn_file)"
  driver: postgres`},
		{"postgres with a path", head + `store:
  driver: postgres
  dsn: ${SECRET}
  path: x.db  # want store.path "not used by the postgres driver"`},
		{"postgres with a path only", head + `store:  # want store.dsn "required when driver is postgres (or dsn_file): the PostgreSQL connection string, such as postgres://seatsync@db.example/seatsync?sslmode=verify-full; store.path is the sqlite driver's file"
  driver: postgres
  path: x.db`},
		{"sqlite with a dsn", head + `store:
  dsn: ${SECRET}  # want store.dsn "not used by the sqlite driver"`},
		{"bad schedule", head + `schedule: "*/15 * *"  # want schedule "\"*/15 * *\" is not a schedule (5 cron fields or a descriptor such as @every 15m): expected exactly 5 fields"`},
		{"bad descriptor", head + `schedule: "@every fortnight"  # want schedule "is not a schedule"`},
		{"time zone without schedule", head + `schedule: "TZ=UTC"  # want schedule "a time zone must be followed by a space"`},
		{"bad source schedule", head + `  - name: hr2
    type: file
    path: a.csv
    schedule: "61 * * * *"  # want sources[1].schedule "is not a schedule"`},
		{"schedule on a date that does not exist", head + `schedule: "0 0 30 2 *"  # want schedule "\"0 0 30 2 *\" has no run in the next year (a date that does not exist, such as 30 February?)"`},
		{"zero interval", head + `schedule: "@every 0s"  # want schedule "\"@every 0s\" has an interval of 0s: it must be more than 0"`},
		{"negative source interval", head + `  - name: hr2
    type: file
    path: a.csv
    schedule: "@every -1m"  # want sources[1].schedule "has an interval of -1m: it must be more than 0"`},
		{"zero interval after a time zone", head + `schedule: "CRON_TZ=UTC @every 0s"  # want schedule "must be more than 0"`},

		// licensing
		{"no pools", `version: 1
licensing:
  pools: []  # want licensing.pools "at least one pool is required"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"no licensing at all", `version: 1  # want licensing.pools "at least one pool is required"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"pool problems", `version: 1
licensing:
  pools:
    - name: primary
      limit: 10
      areas: [primary, primary]  # want licensing.pools[0].areas[1] "\"primary\" is listed twice"
      reserve: 11  # want licensing.pools[0].reserve "11 is more than the pool's limit of 10"
    - name: primary  # want licensing.pools[1].name "\"primary\" is already the name of licensing.pools[0]"
      limit: 5
      areas: [partners]
      reserve: -1  # want licensing.pools[1].reserve "-1 is negative"
    - name: ""  # want licensing.pools[2].name "must not be empty"
      limit: 1
      areas: [primary, ""]  # want licensing.pools[2].areas[0] "\"primary\" is already an area of licensing.pools[0]" # want licensing.pools[2].areas[1] "must not be empty"
    - {name: empty, limit: 1}  # want licensing.pools[3].areas "at least one area is required"
    - {name: nolimit, limit: ~, areas: [x]}  # want licensing.pools[4].limit "required"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"unlimited pool takes any reserve", `version: 1
licensing:
  pools:
    - {name: primary, limit: unlimited, areas: [primary], reserve: 1000}
    - {name: big, limit: 5, areas: [x], reserve: 5}
    - {name: n, limit: lots, areas: [y], reserve: 5}  # want licensing.pools[2].limit "is not a number of seats"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"limit_from", `version: 1
licensing:
  license_file: license.yaml
  public_key_file: vendor.pub
  license_url: http://licences.example/acme.yaml  # want licensing.license_url "is not an https:// URL"
  pools:
    - {name: primary, limit_from: MAX_USERS, areas: [primary]}
    - {name: both, limit: 5, limit_from: MAX_USERS, areas: [b]}  # want licensing.pools[1].limit_from "a pool has limit or limit_from, not both"
    - {name: blank, limit_from: " ", areas: [c]}  # want licensing.pools[2].limit_from "must name a key of the licence file's limits"
    - {name: neither, areas: [d]}  # want licensing.pools[3].limit "required: a number of seats or \"unlimited\" (or limit_from, a key of the licence file)"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"limit_from without a licence file", `version: 1
licensing:
  public_key_file: vendor.pub  # want licensing.public_key_file "needs licensing.license_file"
  license_tls: {ca_file: ca.pem}  # want licensing.license_tls "needs licensing.license_file"
  pools:
    - {name: primary, limit_from: MAX_USERS, areas: [primary]}  # want licensing.pools[0].limit_from "needs licensing.license_file: the licence whose limits.MAX_USERS this pool takes"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"license_tls without license_url", `version: 1
licensing:
  license_file: license.yaml
  license_tls: {ca_file: ca.pem}  # want licensing.license_tls "only applies with licensing.license_url"
  pools:
    - {name: primary, limit_from: MAX_USERS, areas: [primary]}
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"exempt", head + `  - {name: b, type: file, path: b.csv}
licensing:  # want licensing "duplicate key (first set on line 2)"
  exempt: []`},
		{"exempt entries", `version: 1
licensing:
  pools: [{name: primary, limit: 10, areas: [primary]}]
  exempt:
    - admin
    - ""  # want licensing.exempt[1] "must not be empty"
    - Admin  # want licensing.exempt[2] "\"Admin\" is already listed as licensing.exempt[0]"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"priority", `version: 1
licensing:
  pools: [{name: primary, limit: 10, areas: [primary]}]
  priority:
    - {group: Executives, weight: 0}
    - {weight: 5}  # want licensing.priority[1].group "required"
    - group: Sales  # want licensing.priority[2].weight "required"
  on_overage: evict  # want licensing.on_overage "\"evict\" is not one of keep, block_newest"
sources: [{name: hr, type: file, path: hr.csv}]`},
		{"products", `version: 1
licensing:
  pools: [{name: primary, limit: 10, areas: [primary]}]
  products:
    - {name: crm, limit: 5, grant: [{group: Sales}, {area: primary}, {attribute: {name: department, equals: Sales}}]}
    - name: crm  # want licensing.products[1].name "\"crm\" is already the name of licensing.products[0]"
      limit: 1
      grant: [{area: nowhere}]  # want licensing.products[1].grant[0].area "\"nowhere\" is not an area of any pool (areas: primary)"
    - name: bi  # want licensing.products[2].limit "required: a number of licences or \"unlimited\""
      enabled_by: BI_ALLOWED  # want licensing.products[2].enabled_by "needs licensing.license_file: the licence whose flag BI_ALLOWED enables this product"
      grant: [{group: BI, area: primary}]  # want licensing.products[2].grant[0] "has more than one of group, area and attribute; a rule has one of them"
    - name: dw  # want licensing.products[3].grant "at least one rule is required (group, area or attribute)"
      limit: unlimited
sources: [{name: hr, type: file, path: hr.csv}]`},

		// sources, common keys
		{"no sources", `version: 1
licensing:
  pools: [{name: primary, limit: 10, areas: [primary]}]
sources: []  # want sources "at least one source is required"`},
		{"source names and types", head + `  - {type: file, path: a.csv}  # want sources[1].name "required"
  - {name: "hr/2", type: file, path: a.csv}  # want sources[2].name "\"hr/2\" may only contain letters, digits, '-', '_' and '.'"
  - {name: hr, type: file, path: a.csv}  # want sources[3].name "\"hr\" is already the name of sources[0]"
  - {name: x1}  # want sources[4].type "required: one of api, dir, file"
  - {name: x2, type: workday, url: x}  # want sources[5].type "\"workday\" is not one of api, dir, file"
  - {name: x.3_y-4, type: file, path: a.csv}`},
		{"source common enums", head + `  - name: hr2
    type: file
    path: a.csv
    username_case: upper  # want sources[1].username_case "\"upper\" is not one of lower, keep"
    on_leave: disable  # want sources[1].on_leave "\"disable\" is not one of block, delete, keep"
  - name: hr3
    type: file
    path: a.csv
    on_leave: delete
    delete_after: 720h  # want sources[2].delete_after "only applies with on_leave: block (on_leave is delete)"
  - {name: hr4, type: file, path: a.csv, on_leave: block, delete_after: 720h}`},
		{"source areas", `version: 1
licensing:
  pools: [{name: staff, limit: 10, areas: [staff, partners]}]
sources:
  - {name: hr, type: file, path: hr.csv}  # want sources[0].area "the default area \"primary\" is not an area of any pool (areas: partners, staff)"
  - name: hr2
    type: file
    path: a.csv
    area: extranet  # want sources[1].area "\"extranet\" is not an area of any pool"
    groups: [Staff, ""]  # want sources[1].groups[1] "must not be empty"
    area_rules:
      - {group: Partners, area: partners}
      - {group: Partners, attribute: {name: company, equals: Acme}, area: partners}  # want sources[1].area_rules[1] "has both group and attribute"
      - {area: partners}  # want sources[1].area_rules[2] "needs a group or an attribute"
      - attribute: {equals: Acme}  # want sources[1].area_rules[3].attribute.name "required"
        area: partners
      - {group: X}  # want sources[1].area_rules[4].area "required"
      - {group: X, area: nowhere}  # want sources[1].area_rules[5].area "\"nowhere\" is not an area of any pool"
      - {attribute: {name: company, equals: ""}, area: staff}`},
		{"mapping", head + `  - name: hr2
    type: file
    path: a.csv
    mapping:
      external_id: id
      usrename: login  # want sources[1].mapping.usrename "\"usrename\" is not an identity field (did you mean username?)"
      manager: boss  # want sources[1].mapping.manager "\"manager\" is not an identity field (one of external_id"
      email: ""  # want sources[1].mapping.email "must name the source attribute or column to read"
      "home.dir": h  # want sources[1].mapping["home.dir"] "is not an identity field"`},

		{"variable inside a flow mapping", head + `server: {listen: ${LISTEN}, token: ${SECRET}}  # want server.listen "environment variable LISTEN is not set"`},
		{"escaped variable inside a flow list", head + `licensing: {exempt: [$${ADMIN}]}  # want licensing "duplicate key (first set on line 2)"`},

		// notify, server, log
		{"notify", head + `notify:
  warn_at_percent: 0  # want notify.warn_at_percent "0 is not between 1 and 100"
  email:  # want notify.email.from "required"
    to: [it@example.com, "not an address"]  # want notify.email.to[1] "\"not an address\" is not an email address"
    smtp:  # want notify.email.smtp.host "required"
      port: 70000  # want notify.email.smtp.port "70000 is not a port (1 to 65535)"
      tls: ssl  # want notify.email.smtp.tls "\"ssl\" is not one of starttls, tls, none"
      password: ${SECRET}  # want notify.email.smtp.password "needs username"
  webhooks:
    - {format: slack}  # want notify.webhooks[0].url "required"
    - url: ftp://hooks.example.com/x  # want notify.webhooks[1].url "is not an http:// or https:// URL"
      format: teams  # want notify.webhooks[1].format "\"teams\" is not one of slack, json"
      timeout: 0s  # want notify.webhooks[1].timeout "must be more than 0"
    - {url: "http://127.0.0.1:9000/hook"}`},
		{"email without recipients", head + `notify:
  warn_at_percent: 101  # want notify.warn_at_percent "101 is not between 1 and 100"
  email:  # want notify.email.to "at least one address is required"
    from: "Seatsync <seatsync@example.com>"
    smtp: {host: smtp.example.com}`},
		{"server", head + `server:
  listen: 8080  # want server.listen "\"8080\" is not host:port"`},
		{"server port", head + `server:
  listen: "127.0.0.1:http"  # want server.listen "the port must be a number from 1 to 65535"`},
		{"server open without a token", head + `server:
  listen: 0.0.0.0:8080  # want server.listen "\"0.0.0.0:8080\" is not a loopback address and server.token is not set"`},
		{"server open with a long token", head + `server:
  listen: ":8080"
  token: ${LONG_SECRET}`},
		{"server open with a short token", head + `server:
  listen: 0.0.0.0:8080
  token: ${SECRET}  # want server.token "shorter than 32 characters, which is too easy to guess with server.listen \"0.0.0.0:8080\" (not a loopback address); make a random one with: openssl rand -hex 32"`},
		{"server on a host name with a one-character token", head + `server:
  listen: seatsync.corp.example:8080
  token: x  # want server.token "shorter than 32 characters"`},
		{"loopback server with a short token", head + `server:
  listen: 127.0.0.1:8080
  token: x`},
		{"IPv6 loopback server with a short token", head + `server:
  listen: "[::1]:8080"
  token: ${SECRET}`},
		{"localhost server with a short token", head + `server:
  listen: localhost:8080
  token: ${SECRET}`},
		{"log", head + `log:
  level: verbose  # want log.level "\"verbose\" is not one of debug, info, warn, error"
  format: text  # want log.format "\"text\" is not one of json, console"`},

		// documents
		{"not a mapping", `- version: 1  # want "" "expected a mapping (key: value), got a list"`},
		{"second document", head + `---  # want "" "a second YAML document"
version: 1`},
		{"yaml syntax", `version: 1
licensing:
  pools: [  # want "" "invalid YAML: did not find expected ',' or ']'"
sources: x`},
		{"yaml syntax on the first line", `version: [1  # want "" "invalid YAML: did not find expected ',' or ']'"`},
		{"yaml scanner error", `version: 1
licensing:
  pools: []
sources: x: y  # want "" "invalid YAML: mapping values are not allowed in this context"`},
		{"yaml tab indentation", "version: 1\nlicensing:\n\tpools: []  # want \"\" \"invalid YAML: found character that cannot start any token: a tab; YAML indents with spaces only\""},

		// Many problems in one file are all reported, in line order.
		{"many problems at once", `version: 3  # want version "3 is not a supported version"
store: {driver: postgres}  # want store.dsn "required when driver is postgres"
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary], reserv: 1}  # want licensing.pools[0].reserv "unknown key (did you mean reserve?)"
  on_overage: never  # want licensing.on_overage "\"never\" is not one of keep, block_newest"
sources:
  - name: corp-ad
    type: dir
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${AD_PASSWORD}  # want sources[0].bind_password "environment variable AD_PASSWORD is not set"
    tls: {mode: ldaps, ca: x}  # want sources[0].tls.ca "unknown key (known keys: ca_file, mode)"
    delimiter: ","  # want sources[0].delimiter "not a setting of a dir source (it is for file)"
  - {name: hr, type: file}  # want sources[1].path "must not be empty"
log: {level: trace}  # want log.level "\"trace\" is not one of debug"`},
	}
	env := testEnv(map[string]string{"SECRET": "s3cr3t-value", "LONG_SECRET": "s3cr3t-value-long-enough-for-a-remote-server"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWith([]byte(tc.yaml), "/nonexistent/seatsync/seatsync.yaml", env, testPlugins)
			want := wanted(tc.yaml)
			if len(want) == 0 {
				if err != nil {
					t.Fatalf("Parse: unexpected error:\n%v", err)
				}
				if cfg == nil {
					t.Fatal("Parse returned neither a config nor an error")
				}
				return
			}
			var got Problems
			if !errors.As(err, &got) {
				t.Fatalf("Parse error = %v (%T), want Problems", err, err)
			}
			// Messages must contain the expected fragment; compare the
			// fragment so the diff shows everything else exactly.
			got = append(Problems(nil), got...)
			for i := range got {
				if i < len(want) && strings.Contains(got[i].Message, want[i].Message) {
					got[i].Message = want[i].Message
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nfull error:\n%v", diff, err)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error shows a secret:\n%v", err)
			}
		})
	}
}
