package reconcile

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/licensing/licensefile"
)

// Licence states of a run's report.
const (
	LicenseValid   = "valid"
	LicenseExpired = "expired"
	// LicenseNone is a configured licence file with no valid licence in
	// force: none verified, and none was ever remembered.
	LicenseNone = "none"
)

// LicenseResult is the vendor licence a run used (SPEC section 12); the
// report has one when licensing.license_file is set.
type LicenseResult struct {
	State        string `json:"state"` // valid | expired | none
	RegisteredTo string `json:"registered_to,omitempty"`
	Issued       string `json:"issued,omitempty"`
	Expires      string `json:"expires,omitempty"` // a date, or never
	// DaysLeft is the whole days (rounded up) until the licence lapses,
	// at the start of the day after expires (UTC); absent for never.
	DaysLeft *int `json:"days_left,omitempty"`
	// From is the file or URL the licence was read from.
	From string `json:"from,omitempty"`
	// Remembered says the licence is the last valid one, kept in the
	// store, because the file was refused.
	Remembered bool `json:"remembered,omitempty"`
	// Refused is why the licence file (or the one license_url gave) was
	// refused.
	Refused string `json:"refused,omitempty"`
	// FetchFailed is why license_url could not be fetched.
	FetchFailed string `json:"fetch_failed,omitempty"`
	// FrozenPools are the pools that give no new seat because the licence
	// expired or none is in force.
	FrozenPools []string `json:"frozen_pools,omitempty"`
}

// license reads the licence in force for a run, puts it in the report and
// logs what an admin must know, and returns the policy it makes. In sync
// mode a licence that verified is remembered (and one fetched from
// license_url written to license_file); a plan keeps nothing.
func (r *Runner) license(ctx context.Context, log *zap.Logger, opt Options, rep *Report) (*licensing.Policy, error) {
	c := r.Config.Licensing
	if c.LicenseFile == "" {
		return licensing.FromConfig(c), nil
	}
	loader := &licensefile.Loader{Config: c, Memory: r.Store, Keep: opt.Mode == ModeSync, Client: r.LicenseClient, Log: log}
	f, err := loader.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("licence: %w", err)
	}
	now := rep.StartedAt
	pol, polErr := licensing.FromConfigLicensed(c, f.License, now)
	rep.License = LicenseReport(f, pol, now)
	lr := rep.License
	switch {
	case f.Refused != nil && f.License != nil:
		log.Error("licence refused: "+f.Refused.Error()+"; "+inForceText(lr)+" stays in force",
			zap.String("issued", lr.Issued), zap.String("expires", lr.Expires))
	case f.Refused != nil:
		log.Error("licence refused: " + f.Refused.Error() + "; " + noLicenseText(lr))
	}
	if lr.State == LicenseExpired {
		log.Warn(fmt.Sprintf("the licence expired on %s: nobody new gets a seat in pools %s; people already active stay active",
			lr.Expires, strings.Join(lr.FrozenPools, ", ")))
	}
	if polErr != nil {
		return nil, fmt.Errorf("licence: %w", polErr)
	}
	for _, t := range r.Config.Targets {
		if u := TargetURL(t.Settings); u != "" && f.License != nil && !f.License.Covers(u) {
			log.Warn("the licence does not cover target "+t.Name+" (its hosts: "+strings.Join(f.License.Hosts, ", ")+")",
				zap.String("target", t.Name), zap.String("url", u))
		}
	}
	return pol, nil
}

// TargetURL is a target's application URL, when its type has one.
func TargetURL(settings any) string {
	if a, ok := settings.(interface{ Endpoint() string }); ok {
		return a.Endpoint()
	}
	return ""
}

// LicenseReport describes the licence in force f and the pools it froze.
func LicenseReport(f *licensefile.InForce, pol *licensing.Policy, now time.Time) *LicenseResult {
	lr := &LicenseResult{State: LicenseNone, From: f.From, Remembered: f.Remembered}
	if f.Refused != nil {
		lr.Refused = f.Refused.Error()
	}
	if f.FetchFailed != nil {
		lr.FetchFailed = f.FetchFailed.Error()
	}
	if l := f.License; l != nil {
		lr.State = LicenseValid
		if l.Expired(now) {
			lr.State = LicenseExpired
		}
		lr.RegisteredTo, lr.Issued, lr.Expires = l.RegisteredTo, l.Issued.Format(time.DateOnly), l.ExpiresString()
		if !l.Never() {
			days := int((l.Left(now) + 24*time.Hour - 1) / (24 * time.Hour))
			lr.DaysLeft = &days
		}
	}
	for _, p := range pol.Pools {
		if p.Frozen {
			lr.FrozenPools = append(lr.FrozenPools, p.Name)
		}
	}
	return lr
}

// inForceText names the licence in force: "the remembered licence (issued
// 2026-01-15, expires 2027-01-15)".
func inForceText(lr *LicenseResult) string {
	what := "the licence"
	if lr.Remembered {
		what = "the remembered licence"
	}
	return fmt.Sprintf("%s (issued %s, expires %s)", what, lr.Issued, lr.Expires)
}

func noLicenseText(lr *LicenseResult) string {
	if len(lr.FrozenPools) == 0 {
		return "no valid licence has ever been seen"
	}
	return fmt.Sprintf("no valid licence has ever been seen, so pools %s (limit_from) give no seats until one is installed; nobody already active is blocked",
		strings.Join(lr.FrozenPools, ", "))
}

// Text is the licence's line in a text report.
func (lr *LicenseResult) Text() string {
	var b strings.Builder
	switch lr.State {
	case LicenseNone:
		b.WriteString("licence: NONE in force: " + noLicenseText(lr))
	case LicenseExpired:
		fmt.Fprintf(&b, "licence: EXPIRED on %s: nobody new gets a seat in %s; people already active stay active", lr.Expires, strings.Join(lr.FrozenPools, ", "))
	default:
		fmt.Fprintf(&b, "licence: valid, issued %s, expires %s", lr.Issued, lr.Expires)
		if lr.DaysLeft != nil {
			fmt.Fprintf(&b, " (%d days left)", *lr.DaysLeft)
		}
		if lr.RegisteredTo != "" {
			b.WriteString(", registered to " + lr.RegisteredTo)
		}
	}
	if lr.Refused != "" {
		b.WriteString("\nlicence REFUSED: " + lr.Refused)
		if lr.State != LicenseNone {
			b.WriteString("; " + inForceText(lr) + " stays in force")
		}
	}
	if lr.FetchFailed != "" {
		b.WriteString("\nlicence fetch failed: " + lr.FetchFailed + "; the licence in force is unchanged")
	}
	return b.String()
}
