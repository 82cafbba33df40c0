package licensing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

func productConfig() config.Licensing {
	return config.Licensing{
		Pools: []config.Pool{{Name: "primary", Limit: config.Limit{N: 5}, Areas: []string{"primary"}}},
		Products: []config.Product{
			{Name: "crm", Limit: config.Limit{N: 2}, EnabledBy: "CRM_ALLOWED", Grant: []config.GrantRule{{Group: "Sales"}}},
			{Name: "bi", Limit: config.Limit{Unlimited: true}, Grant: []config.GrantRule{
				{Area: "partners"}, {Attribute: &config.AttributeRule{Name: "department", Equals: "Finance"}},
				{Attribute: &config.AttributeRule{Name: "cost_center", Equals: "42"}}}},
		},
	}
}

// A product's enabled_by flag enables it while the licence in force says
// yes; off, missing, expired or without a licence it gives nothing.
func TestProductEnabledBy(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	lic := func(flag, expires string) *licensing.License {
		t.Helper()
		l, err := licensing.ParseLicense([]byte("issued: 2026-01-01\nexpires: " + expires + "\nlimits:\n  MAX_USERS: 5\n" + flag))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		name     string
		lic      *licensing.License
		disabled bool
		err      string
	}{
		{"flag yes", lic("  CRM_ALLOWED: yes\n", "never"), false, ""},
		{"flag no", lic("  CRM_ALLOWED: no\n", "never"), true, ""},
		{"no licence in force", nil, true, ""},
		{"expired", lic("  CRM_ALLOWED: yes\n", "2026-02-01"), true, ""},
		{"no such flag", lic("", "never"), true, "has no yes/no flag CRM_ALLOWED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := licensing.FromConfigLicensed(productConfig(), tc.lic, now)
			if (err != nil) != (tc.err != "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if got := pol.Products[0].Disabled; got != tc.disabled {
				t.Errorf("crm disabled = %v, want %v", got, tc.disabled)
			}
			if pol.Products[1].Disabled {
				t.Error("bi, with no enabled_by, is disabled")
			}
			if got := pol.Products[0].HasRoom(0); got == tc.disabled {
				t.Errorf("crm HasRoom(0) = %v while disabled %v", got, tc.disabled)
			}
		})
	}
}

func TestProductMatches(t *testing.T) {
	pol := licensing.FromConfig(productConfig())
	crm, bi := &pol.Products[0], &pol.Products[1]
	for _, tc := range []struct {
		p       model.Profile
		crm, bi bool
	}{
		{model.Profile{Groups: []string{"sales"}, Area: "primary"}, true, false},
		{model.Profile{Area: "partners"}, false, true},
		{model.Profile{Area: "primary", Department: "Finance"}, false, true},
		{model.Profile{Area: "primary", Attributes: map[string]string{"cost_center": "42"}}, false, true},
		{model.Profile{Area: "primary", Department: "finance"}, false, false},
	} {
		if got := crm.Matches(&tc.p); got != tc.crm {
			t.Errorf("crm matches %+v = %v", tc.p, got)
		}
		if got := bi.Matches(&tc.p); got != tc.bi {
			t.Errorf("bi matches %+v = %v", tc.p, got)
		}
	}
	counts := pol.CountProducts([]store.Grant{
		{ProfileID: 1, Product: "crm", State: store.GrantGranted}, {ProfileID: 2, Product: "crm", State: store.GrantGranted},
		{ProfileID: 3, Product: "crm", State: store.GrantGranted}, {ProfileID: 4, Product: "crm", State: store.GrantQueued},
		{ProfileID: 5, Product: "gone", State: store.GrantGranted},
	})
	if c := counts[0]; c.Issued != 3 || c.Queued != 1 || c.Overage != 1 || c.Remaining != 0 {
		t.Errorf("crm counted %+v", c)
	}
	if c := counts[1]; c.Issued != 0 || c.Remaining != -1 {
		t.Errorf("bi counted %+v", c)
	}
}
