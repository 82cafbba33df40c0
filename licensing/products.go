package licensing

import (
	"fmt"
	"strings"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Product is one per-product licence (a CRM add-on, a connector): Limit
// licences, held only by active profiles that a Grant rule matches, given
// in the same queue order as account seats.
type Product struct {
	Name      string
	Limit     int
	Unlimited bool
	// EnabledBy is the licence flag that enables the product ("" for
	// none); Disabled a product that grants nothing, because that flag is
	// off or no licence is in force. Its holders keep their licence, as a
	// frozen pool's do.
	EnabledBy string
	Disabled  bool
	Grant     []GrantRule
}

// GrantRule matches profiles by group (case-insensitively), by area, or
// by a profile field or attribute value (Attribute, Equals).
type GrantRule struct {
	Group     string
	Area      string
	Attribute string
	Equals    string
}

// HasRoom reports whether one more licence can be given when used are
// given: never above the limit, never while the product is disabled.
func (p *Product) HasRoom(used int) bool {
	return !p.Disabled && (p.Unlimited || used < p.Limit)
}

// Remaining is the number of licences free when used are given, -1 for
// an unlimited product.
func (p *Product) Remaining(used int) int {
	switch {
	case p.Disabled:
		return 0
	case p.Unlimited:
		return -1
	}
	return max(0, p.Limit-used)
}

// Matches reports whether a rule of the product matches the profile. It
// says nothing of the profile's state: only active profiles hold product
// licences (see Wants).
func (p *Product) Matches(pr *model.Profile) bool {
	for _, r := range p.Grant {
		switch {
		case r.Group != "":
			for _, g := range pr.Groups {
				if strings.EqualFold(g, r.Group) {
					return true
				}
			}
		case r.Area != "":
			if pr.Area == r.Area {
				return true
			}
		case r.Attribute != "":
			v, ok := pr.Text(r.Attribute)
			if !ok {
				v, ok = pr.Attributes[r.Attribute]
			}
			if ok && v == r.Equals {
				return true
			}
		}
	}
	return false
}

// MayHold reports whether the profile may hold a product licence at all:
// it is active.
func MayHold(pr *model.Profile) bool { return pr.State == model.Active }

// ProductIndex returns the index of the product called name, or -1.
func (p *Policy) ProductIndex(name string) int {
	for i := range p.Products {
		if p.Products[i].Name == name {
			return i
		}
	}
	return -1
}

// productsFromConfig builds the products of a configuration with lic, the
// licence in force (nil for none). A product's enabled_by flag must be a
// yes/no flag of the licence; one that is not is an error, and the
// product is disabled. An expired licence disables it too.
func productsFromConfig(c config.Licensing, lic *License, now time.Time) ([]Product, []error) {
	var errs []error
	out := make([]Product, 0, len(c.Products))
	for i, cp := range c.Products {
		p := Product{Name: cp.Name, Limit: cp.Limit.N, Unlimited: cp.Limit.Unlimited, EnabledBy: cp.EnabledBy}
		for _, r := range cp.Grant {
			gr := GrantRule{Group: r.Group, Area: r.Area}
			if r.Attribute != nil {
				gr.Attribute, gr.Equals = r.Attribute.Name, r.Attribute.Equals
			}
			p.Grant = append(p.Grant, gr)
		}
		if cp.EnabledBy != "" {
			p.Disabled = true
			if lic != nil {
				on, ok := lic.Flag(cp.EnabledBy)
				if !ok {
					errs = append(errs, fmt.Errorf("licensing.products[%d].enabled_by: the licence has no yes/no flag %s; product %s grants nothing", i, cp.EnabledBy, cp.Name))
				}
				// An expired licence gives nobody new a licence.
				p.Disabled = !on || lic.Expired(now)
			}
		}
		out = append(out, p)
	}
	return out, errs
}

// ProductStatus is what `seats` and the status page show for one product:
// Issued of Limit licences given, Queued waiting.
type ProductStatus struct {
	Name      string `json:"name"`
	Limit     int    `json:"limit"`
	Unlimited bool   `json:"unlimited"`
	Issued    int    `json:"issued"`
	Remaining int    `json:"remaining"`
	Queued    int    `json:"queued"`
	Overage   int    `json:"overage"`
	EnabledBy string `json:"enabled_by,omitempty"`
	Disabled  bool   `json:"disabled,omitempty"`
}

// CountProducts tallies every configured product from the stored grants.
func (p *Policy) CountProducts(grants []store.Grant) []ProductStatus {
	out := make([]ProductStatus, len(p.Products))
	for i, pr := range p.Products {
		out[i] = ProductStatus{Name: pr.Name, Limit: pr.Limit, Unlimited: pr.Unlimited, EnabledBy: pr.EnabledBy, Disabled: pr.Disabled}
	}
	for _, g := range grants {
		i := p.ProductIndex(g.Product)
		if i < 0 {
			continue
		}
		if g.State == store.GrantGranted {
			out[i].Issued++
		} else {
			out[i].Queued++
		}
	}
	for i := range out {
		pr := &p.Products[i]
		out[i].Remaining = pr.Remaining(out[i].Issued)
		if !pr.Unlimited {
			out[i].Overage = max(0, out[i].Issued-pr.Limit)
		}
	}
	return out
}
