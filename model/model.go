// Package model holds the plain data types that flow through seatsync:
// identities as sources report them and profiles as the store keeps them.
// It has no behaviour beyond small helpers, so every other package can
// depend on it without cycles.
package model

import (
	"slices"
	"strings"
	"time"
)

// Identity is one person as a source reports them, normalised by the
// connector (SPEC section 1). Connectors fill only what their mapping
// names; Attributes carries every other mapped or extra attribute so area
// rules can match on it.
type Identity struct {
	ExternalID  string            `json:"external_id"`
	Username    string            `json:"username"`
	Email       string            `json:"email,omitempty"`
	GivenName   string            `json:"given_name,omitempty"`
	FamilyName  string            `json:"family_name,omitempty"`
	DisplayName string            `json:"display_name,omitempty"`
	Title       string            `json:"title,omitempty"`
	Department  string            `json:"department,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Enabled     bool              `json:"enabled"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	// Where locates the entry in its source ("line 14", a DN), so a report
	// can point at an identity the run had to skip.
	Where string `json:"-"`
}

// State is a profile's state: active or blocked.
type State string

const (
	Active  State = "active"
	Blocked State = "blocked"
)

// Reason is why a profile is blocked (SPEC section 2). It is empty for
// active profiles.
type Reason string

const (
	ReasonNone           Reason = ""
	ReasonLicense        Reason = "license"
	ReasonAdmin          Reason = "admin"
	ReasonSourceDisabled Reason = "source_disabled"
	ReasonLeftSource     Reason = "left_source"
)

// ParseReason reads a reason as a person writes it on the command line or
// in an API query: "licence", the spelling the documentation uses for a
// licence, is the reason "license". Anything else is taken as written
// (check it with Valid).
func ParseReason(s string) Reason {
	if s == "licence" {
		return ReasonLicense
	}
	return Reason(s)
}

// Valid reports whether r is one of the block reasons SPEC section 2 names.
func (r Reason) Valid() bool {
	switch r {
	case ReasonLicense, ReasonAdmin, ReasonSourceDisabled, ReasonLeftSource:
		return true
	}
	return false
}

// Profile is the application account seatsync keeps, one per person.
//
// Source and ExternalID are empty for unowned profiles (made by hand).
// Version is bumped by the store on every write, so an apply can tell that
// a profile changed between plan and apply.
type Profile struct {
	ID          int64             `json:"-"`
	Version     int64             `json:"-"`
	Username    string            `json:"username"`
	Email       string            `json:"email"`
	GivenName   string            `json:"given_name"`
	FamilyName  string            `json:"family_name"`
	DisplayName string            `json:"display_name"`
	Title       string            `json:"title"`
	Department  string            `json:"department"`
	Groups      []string          `json:"groups"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Area        string            `json:"area"`
	State       State             `json:"state"`
	BlockReason Reason            `json:"block_reason"`
	Source      string            `json:"source"`
	ExternalID  string            `json:"external_id"`
	// QueuedAt is when the profile first asked for a seat and did not get
	// one; it is set only while the profile waits in the licence queue
	// (blocked, reason license).
	QueuedAt    time.Time `json:"queued_at"`
	ActivatedAt time.Time `json:"activated_at"`
	BlockedAt   time.Time `json:"blocked_at"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Owned reports whether a source owns the profile.
// Text returns one of the profile's text fields by its name in the
// configuration and the profile export (username, external_id, email,
// given_name, family_name, display_name, title, department, area,
// source), and whether name is one.
func (p *Profile) Text(name string) (string, bool) {
	switch name {
	case "username":
		return p.Username, true
	case "external_id":
		return p.ExternalID, true
	case "email":
		return p.Email, true
	case "given_name":
		return p.GivenName, true
	case "family_name":
		return p.FamilyName, true
	case "display_name":
		return p.DisplayName, true
	case "title":
		return p.Title, true
	case "department":
		return p.Department, true
	case "area":
		return p.Area, true
	case "source":
		return p.Source, true
	}
	return "", false
}

func (p *Profile) Owned() bool { return p.Source != "" }

// Key is the match key of an owned profile: (owner, external_id).
type Key struct {
	Source     string
	ExternalID string
}

// Key returns the profile's match key.
func (p *Profile) Key() Key { return Key{p.Source, p.ExternalID} }

// Clone returns a deep copy, so a plan can hold "before" and "after"
// without sharing slices or maps.
func (p Profile) Clone() Profile {
	p.Groups = slices.Clone(p.Groups)
	if p.Attributes != nil {
		m := make(map[string]string, len(p.Attributes))
		for k, v := range p.Attributes {
			m[k] = v
		}
		p.Attributes = m
	}
	return p
}

// FoldUsername is the case-insensitive form usernames are compared in.
func FoldUsername(u string) string { return strings.ToLower(u) }

// The identity fields a source's mapping can name, as indexes into
// FieldNames.
const (
	FieldExternalID = iota
	FieldUsername
	FieldEmail
	FieldGivenName
	FieldFamilyName
	FieldDisplayName
	FieldTitle
	FieldDepartment
	FieldGroups
	FieldEnabled
	NumFields
)

// FieldNames returns the mapping keys of the identity fields, in the order
// of the Field constants (and of problem reports).
func FieldNames() []string {
	return []string{
		FieldExternalID:  "external_id",
		FieldUsername:    "username",
		FieldEmail:       "email",
		FieldGivenName:   "given_name",
		FieldFamilyName:  "family_name",
		FieldDisplayName: "display_name",
		FieldTitle:       "title",
		FieldDepartment:  "department",
		FieldGroups:      "groups",
		FieldEnabled:     "enabled",
	}
}
