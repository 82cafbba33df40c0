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

const (
	maxDialTimeout = 10 * time.Second
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
// connector.Opener). It trusts the settings the loader checked (see
// Settings.Validate), fills in what depends on the flavor, and checks only
// what the loader cannot see: the mapping and the group DNs, reporting
// every problem at once. It does no I/O: each Pull connects anew.
func Open(cfg config.Source, log *zap.Logger) (connector.Source, error) {
	set, ok := cfg.Settings.(*Settings)
	if !ok {
		return nil, fmt.Errorf("source %s: no ldap settings (%T)", cfg.Name, cfg.Settings)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &source{
		name:           cfg.Name,
		flavor:         set.Flavor,
		urls:           slices.Clone([]string(set.URL)),
		tlsMode:        set.TLS.Mode,
		caFile:         set.TLS.CAFile,
		serverName:     set.TLS.ServerName,
		bindDN:         set.BindDN,
		password:       set.BindPassword,
		baseDN:         strings.TrimSpace(set.BaseDN),
		userFilter:     strings.TrimSpace(set.UserFilter),
		groupBaseDN:    strings.TrimSpace(set.GroupBaseDN),
		groupFilter:    strings.TrimSpace(set.GroupFilter),
		disabledFilter: strings.TrimSpace(set.DisabledFilter),
		pageSize:       set.PageSize,
		timeout:        set.Timeout.Duration,
		nested:         set.NestedGroups,
		scope:          slices.Clone(cfg.Groups),
		log:            log,
		now:            time.Now,
		retries:        2,
		backoff:        time.Second,
	}
	if s.userFilter == "" {
		s.userFilter = defaultUserFilter(s.flavor)
	}
	if s.groupBaseDN == "" {
		s.groupBaseDN = s.baseDN
	}
	if s.groupFilter == "" {
		s.groupFilter = defaultGroupFilter
	}

	s.mapping = defaultMapping(s.flavor)
	mapped, problems := connector.ParseMapping(cfg.Mapping)
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
