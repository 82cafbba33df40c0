// Package ldap is the connector for LDAP directories and Active Directory
// (`type: ldap`), built on github.com/go-ldap/ldap/v3.
//
// A pull connects to the first configured URL that answers (the others are
// fail-overs), binds, and streams the people under base_dn with the simple
// paged results control, one page at a time: memory stays flat however
// large the directory is. Anything that would make the list shorter than
// the directory (a dropped connection, sizeLimitExceeded or
// timeLimitExceeded, a referral result, a cancelled context) fails the pull.
// Search references (continuation references such as CN=Configuration) are
// ignored: they point outside the searched naming context.
//
// The flavor sets mapping defaults and how people are read:
//
//   - active_directory: objectGUID (as a canonical GUID string) is the
//     external id; userAccountControl bit 0x2 or an expired accountExpires
//     marks a person disabled; with nested_groups the `groups` scope and
//     area rules by group use LDAP_MATCHING_RULE_IN_CHAIN; multi-valued
//     attributes that AD returns in ranges (member;range=0-1499) are read in
//     full.
//   - openldap and generic: entryUUID is the external id; groups are the
//     person's memberOf values together with the groups found by a group
//     search (groupOfNames/groupOfUniqueNames member, posixGroup memberUid);
//     disabled_filter marks people disabled.
//
// Identity.Groups holds group DNs. When a group named by `groups` or by an
// area rule contains a person only through nested groups (nested_groups:
// true), that group's DN, as configured, is added to the person's groups so
// area rules match.
package ldap

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// Flavors.
const (
	FlavorAD       = "active_directory"
	FlavorOpenLDAP = "openldap"
	FlavorGeneric  = "generic"
)

// Defaults that the configuration loader does not already fill in.
const (
	defaultPageSize = 500
	maxADPageSize   = 1000 // AD's MaxPageSize: it refuses bigger pages
	defaultTimeout  = 30 * time.Second
	maxDialTimeout  = 10 * time.Second
	// matchingRuleInChain is LDAP_MATCHING_RULE_IN_CHAIN: AD's transitive
	// (nested) membership match.
	matchingRuleInChain = "1.2.840.113556.1.4.1941"
)

// defaultMapping returns the attributes each field is read from for a
// flavor. A field with several attributes takes the first one the entry
// has ("displayName, else cn").
func defaultMapping(flavor string) [model.NumFields][]string {
	if flavor == FlavorAD {
		return [model.NumFields][]string{
			model.FieldExternalID:  {"objectGUID"},
			model.FieldUsername:    {"sAMAccountName"},
			model.FieldEmail:       {"mail"},
			model.FieldGivenName:   {"givenName"},
			model.FieldFamilyName:  {"sn"},
			model.FieldDisplayName: {"displayName"},
			model.FieldTitle:       {"title"},
			model.FieldDepartment:  {"department"},
			model.FieldGroups:      {"memberOf"},
		}
	}
	return [model.NumFields][]string{
		model.FieldExternalID:  {"entryUUID"},
		model.FieldUsername:    {"uid"},
		model.FieldEmail:       {"mail"},
		model.FieldGivenName:   {"givenName"},
		model.FieldFamilyName:  {"sn"},
		model.FieldDisplayName: {"displayName", "cn"},
		model.FieldTitle:       {"title"},
		model.FieldDepartment:  {"departmentNumber", "ou"},
		model.FieldGroups:      {"memberOf"},
	}
}

func defaultUserFilter(flavor string) string {
	switch flavor {
	case FlavorAD:
		return "(&(objectCategory=person)(objectClass=user))"
	case FlavorOpenLDAP:
		return "(objectClass=inetOrgPerson)"
	}
	return "(objectClass=person)"
}

const defaultGroupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"

// source is one configured LDAP source. It holds configuration only, so one
// value can be pulled many times, also concurrently.
type source struct {
	name           string
	flavor         string
	urls           []string
	tlsMode        string
	caFile         string
	serverName     string
	bindDN         string
	password       config.Secret
	baseDN         string
	userFilter     string
	groupBaseDN    string
	groupFilter    string
	disabledFilter string
	pageSize       int
	timeout        time.Duration
	nested         bool
	mapping        [model.NumFields][]string
	// scope are the `groups` DNs: only their members are pulled.
	scope []string
	// ruleGroups are the group DNs area rules name.
	ruleGroups []string
	// extra are attributes area rules compare that are no identity field;
	// they are read into Identity.Attributes.
	extra []string

	log *zap.Logger
	// now is the clock accountExpires is compared with.
	now func() time.Time
	// retries is how many times a failed connect is retried, backoff the
	// first wait between rounds (doubled each round).
	retries int
	backoff time.Duration
	// noWire makes pulls read everything through go-ldap (tests compare
	// the two ways).
	noWire bool
}

var (
	_ connector.Source  = (*source)(nil)
	_ connector.Checker = (*source)(nil)
)

// Open builds the ldap source described by cfg (it matches
// connector.Opener). It checks the settings, reporting every problem at
// once, and does no I/O: each Pull connects anew.
func Open(cfg config.Source, log *zap.Logger) (connector.Source, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &source{
		name:           cfg.Name,
		flavor:         cfg.Flavor,
		urls:           slices.Clone([]string(cfg.URL)),
		tlsMode:        cfg.TLS.Mode,
		caFile:         cfg.TLS.CAFile,
		serverName:     cfg.TLS.ServerName,
		bindDN:         cfg.BindDN,
		password:       cfg.BindPassword,
		baseDN:         strings.TrimSpace(cfg.BaseDN),
		userFilter:     strings.TrimSpace(cfg.UserFilter),
		groupBaseDN:    strings.TrimSpace(cfg.GroupBaseDN),
		groupFilter:    strings.TrimSpace(cfg.GroupFilter),
		disabledFilter: strings.TrimSpace(cfg.DisabledFilter),
		pageSize:       cfg.PageSize,
		timeout:        cfg.Timeout.Duration,
		nested:         cfg.NestedGroups,
		scope:          slices.Clone(cfg.Groups),
		log:            log,
		now:            time.Now,
		retries:        2,
		backoff:        time.Second,
	}
	var problems []string
	if s.flavor == "" {
		s.flavor = FlavorGeneric
	}
	switch s.flavor {
	case FlavorAD, FlavorOpenLDAP, FlavorGeneric:
	default:
		problems = append(problems, fmt.Sprintf("flavor: %q is not one of active_directory, openldap, generic", s.flavor))
	}
	if s.tlsMode == "" {
		s.tlsMode = "ldaps"
	}
	if len(s.urls) == 0 {
		problems = append(problems, "url: required (one URL or a list, such as ldaps://dc1.example.com:636)")
	}
	for _, u := range s.urls {
		lu := strings.ToLower(u)
		switch {
		case !strings.HasPrefix(lu, "ldap://") && !strings.HasPrefix(lu, "ldaps://"):
			problems = append(problems, fmt.Sprintf("url: %q must start with ldap:// or ldaps://", u))
		case s.tlsMode == "ldaps" && !strings.HasPrefix(lu, "ldaps://"):
			problems = append(problems, fmt.Sprintf("url: %q is not ldaps:// but tls.mode is ldaps", u))
		case s.tlsMode != "ldaps" && strings.HasPrefix(lu, "ldaps://"):
			problems = append(problems, fmt.Sprintf("url: %q is ldaps:// but tls.mode is %s", u, s.tlsMode))
		}
	}
	switch s.tlsMode {
	case "ldaps", "starttls":
	case "none":
		if s.password.IsSet() && !cfg.TLS.AllowInsecure {
			problems = append(problems, "tls.mode: none would send bind_password unencrypted; use ldaps or starttls, or set tls.allow_insecure: true")
		}
	default:
		problems = append(problems, fmt.Sprintf("tls.mode: %q is not one of ldaps, starttls, none", s.tlsMode))
	}
	if s.baseDN == "" {
		problems = append(problems, "base_dn: required")
	}
	if s.bindDN != "" && !s.password.IsSet() {
		problems = append(problems, "bind_dn: needs bind_password")
	}
	if s.password.IsSet() && s.bindDN == "" {
		problems = append(problems, "bind_password: needs bind_dn")
	}
	if s.pageSize == 0 {
		s.pageSize = defaultPageSize
	}
	if s.pageSize < 1 || s.pageSize > maxADPageSize {
		problems = append(problems, fmt.Sprintf("page_size: %d is not between 1 and %d (Active Directory refuses larger pages)", s.pageSize, maxADPageSize))
	}
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	if s.userFilter == "" {
		s.userFilter = defaultUserFilter(s.flavor)
	}
	for _, f := range []struct{ key, val string }{{"user_filter", s.userFilter}, {"group_filter", s.groupFilter}, {"disabled_filter", s.disabledFilter}} {
		if f.val == "" {
			continue
		}
		if err := checkFilter(f.val); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.key, err))
		}
	}
	if s.groupBaseDN == "" {
		s.groupBaseDN = s.baseDN
	}
	if s.groupFilter == "" {
		s.groupFilter = defaultGroupFilter
	}

	s.mapping = defaultMapping(s.flavor)
	mapped, mproblems := connector.ParseMapping(cfg.Mapping)
	problems = append(problems, mproblems...)
	for f, attr := range mapped {
		if attr != "" {
			s.mapping[f] = []string{attr}
		}
	}
	for _, r := range cfg.AreaRules {
		switch {
		case r.Group != "":
			s.ruleGroups = append(s.ruleGroups, r.Group)
		case r.Attribute != nil:
			name := strings.TrimSpace(r.Attribute.Name)
			if name != "" && !slices.Contains(model.FieldNames(), name) && !slices.ContainsFunc(s.extra, func(e string) bool { return strings.EqualFold(e, name) }) {
				s.extra = append(s.extra, name)
			}
		}
	}
	for _, g := range append(slices.Clone(s.scope), s.ruleGroups...) {
		if _, err := parseDN(g); err != nil {
			problems = append(problems, fmt.Sprintf("group %q is not a DN: %v", g, err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("source %s: %s", cfg.Name, strings.Join(problems, "; "))
	}
	return s, nil
}
