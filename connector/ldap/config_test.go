package ldap_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/ldap"
	"github.com/seatsync/seatsync/internal/configtest"
)

// head is a valid configuration; cases append sources.
const head = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners, suppliers]}
sources:
  - {name: dc0, type: ldap, url: ldaps://dc0, base_dn: dc=corp}
`

var plugins = config.Plugins{Sources: connector.Registry{"ldap": ldap.Kind}.Kinds()}

var env = map[string]string{"SECRET": "s3cr3t-value"}

// TestConfigProblems: the loader's checks of an ldap source are these
// settings' Validate; Open trusts them.
func TestConfigProblems(t *testing.T) {
	for name, doc := range map[string]string{
		"ldap required keys": head + `  - {name: ad, type: ldap}  # want sources[1].url "required for an ldap source" # want sources[1].base_dn "required for an ldap source"`,
		"ldap urls": head + `  - name: ad
    type: ldap
    base_dn: dc=corp
    url:
      - ldaps://dc1.corp.example:636
      - http://dc2.corp.example  # want sources[1].url[1] "the scheme must be ldap or ldaps"
      - dc3.corp.example  # want sources[1].url[2] "is not a URL such as ldaps://dc1.example.com:636"
      - ldap://dc4.corp.example:389  # want sources[1].url[3] "is a plain ldap:// URL but tls.mode is ldaps (the default)"
      - ""  # want sources[1].url[4] "must not be empty"
  - name: ad2
    type: ldap
    base_dn: dc=corp
    url: ldaps://dc1.corp.example  # want sources[2].url[0] "is an ldaps:// URL but tls.mode is starttls"
    tls: {mode: starttls}`,
		"ldap settings": head + `  - name: ad
    type: ldap
    url: ldap://dc1
    base_dn: dc=corp
    flavor: active-directory  # want sources[1].flavor "\"active-directory\" is not one of active_directory, openldap, generic"
    tls:
      mode: ldap  # want sources[1].tls.mode "\"ldap\" is not one of ldaps, starttls, none"
    page_size: 0  # want sources[1].page_size "0 is not between 1 and 1000"
    timeout: 0s  # want sources[1].timeout "must be more than 0"
  - name: ad2
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    page_size: 1001  # want sources[2].page_size "1001 is not between 1 and 1000"
    bind_password: ${SECRET}  # want sources[2].bind_password "needs bind_dn"
  - name: ad3
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc  # want sources[3].bind_dn "needs bind_password (or bind_password_file)"`,
		"ldap without tls": head + `  - name: ad
    type: ldap
    url: ldap://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${SECRET}
    tls:
      mode: none  # want sources[1].tls.mode "none would send bind_password unencrypted"
  - name: ad2
    type: ldap
    url: ldap://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${SECRET}
    tls: {mode: none, allow_insecure: true}
  - name: ad3
    type: ldap
    url: ldap://dc1
    base_dn: dc=corp
    tls: {mode: none}`,
		"ldap filters": head + `  - name: ad
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    user_filter: "(&(uid=a)"  # want sources[1].user_filter "\"(&(uid=a)\" is not an LDAP filter"
    group_filter: "(objectClass=groupOfNames)"
    disabled_filter: "description=x)"  # want sources[1].disabled_filter "is not an LDAP filter"`,
		"ldap incremental": head + `  - name: ad
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    incremental: true  # want sources[1].incremental "needs flavor active_directory (DirSync) or openldap (RFC 4533 sync with the syncprov overlay); flavor generic (the default) cannot"
  - name: ad2
    type: ldap
    flavor: openldap
    url: ldaps://dc1
    base_dn: dc=corp
    incremental: true
    full_schedule: "every night"  # want sources[2].full_schedule "is not a schedule"
  - name: ad3
    type: ldap
    flavor: openldap
    url: ldaps://dc1
    base_dn: dc=corp
    full_schedule: "0 3 * * *"  # want sources[3].full_schedule "only used with incremental: true"`,
		"not a number": head + `  - name: ad
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    page_size: many  # want sources[1].page_size "\"many\" is not a whole number"`,
		"unknown key with a typo": head + `  - name: ad
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${SECRET}
    bind_pasword: x  # want sources[1].bind_pasword "did you mean bind_password?"`,
	} {
		t.Run(name, func(t *testing.T) { configtest.Check(t, doc, plugins, env) })
	}
}

func TestConfigDefaults(t *testing.T) {
	doc := head + `  - name: ad
    type: ldap
    flavor: active_directory
    url: [ldap://dc1, ldap://dc2]
    tls: {mode: starttls, ca_file: certs/ca.pem, server_name: dc.corp}
    bind_dn: cn=svc
    bind_password: ${SECRET}
    base_dn: dc=corp
    page_size: 100
    timeout: 5s
    nested_groups: true
    incremental: true
    full_schedule: "30 1 * * 6"
`
	cfg, err := config.ParseWith([]byte(doc), "/etc/seatsync/seatsync.yaml", configtest.Env(env), plugins)
	if err != nil {
		t.Fatal(err)
	}
	want := []ldap.Settings{
		{Flavor: "generic", URL: config.StringList{"ldaps://dc0"}, TLS: ldap.TLS{Mode: "ldaps"}, BaseDN: "dc=corp",
			PageSize: 500, Timeout: config.Duration{Duration: 30 * time.Second}, FullSchedule: config.DefaultFullSchedule},
		{Flavor: "active_directory", URL: config.StringList{"ldap://dc1", "ldap://dc2"},
			TLS:    ldap.TLS{Mode: "starttls", CAFile: "/etc/seatsync/certs/ca.pem", ServerName: "dc.corp"},
			BindDN: "cn=svc", BindPassword: config.NewSecret("s3cr3t-value"), BaseDN: "dc=corp",
			PageSize: 100, Timeout: config.Duration{Duration: 5 * time.Second}, NestedGroups: true,
			Incremental: true, FullSchedule: "30 1 * * 6"},
	}
	var got []ldap.Settings
	for _, s := range cfg.Sources {
		got = append(got, *s.Settings.(*ldap.Settings))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if _, err := ldap.Open(cfg.Sources[1], nil); err != nil {
		t.Errorf("Open of loaded settings: %v", err)
	}
}
