// Package connector defines the Source interface every connector
// implements, and the registry that maps a configured `type` to its
// connector.
package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
)

// Source pulls identities from one configured source.
//
// Pull must stream every identity in the source's scope to emit, in full,
// or return an error: a pull cut short (a dropped connection, an HTTP 5xx,
// a bad page) must be an error, never a shorter list, because a missing
// person looks like a person who left.
//
// Entries that cannot be read (a malformed CSV row, an LDAP entry without
// a required attribute) are not errors: the connector reports them through
// skip and goes on.
type Source interface {
	Pull(ctx context.Context, emit func(model.Identity) error, skip func(Skip)) error
}

// Skip is one source entry a connector could not turn into an identity.
type Skip struct {
	// ExternalID is the entry's external id when it could be read.
	ExternalID string
	// Where locates the entry in the source: "line 14", a DN, a user id.
	Where string
	// Reason says what is wrong, for the report.
	Reason string
}

// Checker is an optional capability: a connector that can test its
// connection and count the people in scope more cheaply or more helpfully
// than a full pull, for `validate --connect`.
type Checker interface {
	Check(ctx context.Context) (count int, err error)
}

// Check tests a source for `validate --connect`: with its own Check when
// it has one, else by pulling in full and counting the identities.
func Check(ctx context.Context, src Source) (int, error) {
	if c, ok := src.(Checker); ok {
		return c.Check(ctx)
	}
	n := 0
	err := src.Pull(ctx, func(model.Identity) error { n++; return nil }, func(Skip) {})
	return n, err
}

// Opener builds a Source from its configuration. It checks the settings
// that only the connector understands and must not do network I/O. The
// logger already names the source (field "source"); the connector does
// not add it again.
type Opener func(cfg config.Source, log *zap.Logger) (Source, error)

// Registry maps a source type to its connector.
type Registry map[string]Opener

// ErrNotBuilt is returned for a source type that the configuration accepts
// but whose connector is not part of this build.
var ErrNotBuilt = errors.New("connector not built in this version of seatsync")

// Known lists every source type the configuration accepts, built or not.
func Known() []string { return []string{"csv", "ldap", "okta"} }

// Open builds the configured source, or explains why it cannot.
func (r Registry) Open(cfg config.Source, log *zap.Logger) (Source, error) {
	open, ok := r[cfg.Type]
	if !ok {
		for _, k := range Known() {
			if k == cfg.Type {
				return nil, fmt.Errorf("source %s: type %s: %w", cfg.Name, cfg.Type, ErrNotBuilt)
			}
		}
		return nil, fmt.Errorf("source %s: unknown type %q (one of %v)", cfg.Name, cfg.Type, Known())
	}
	return open(cfg, log)
}

// Types returns the types this registry can open, sorted.
func (r Registry) Types() []string {
	var ts []string
	for t := range r {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// ParseMapping checks a source's mapping (identity field: source attribute
// or column) and returns the attribute of each field it names, indexed by
// the model.Field constants ("" where unmapped), and a problem for every
// unknown field or empty value. The configuration loader checks the same;
// connectors check again because they can be opened without it.
func ParseMapping(m map[string]string) (attrs [model.NumFields]string, problems []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names := model.FieldNames()
	for _, k := range keys {
		f := slices.Index(names, k)
		if f < 0 {
			problems = append(problems, fmt.Sprintf("mapping.%s: unknown identity field (one of %s)", k, strings.Join(names, ", ")))
			continue
		}
		v := strings.TrimSpace(m[k])
		if v == "" {
			problems = append(problems, fmt.Sprintf("mapping.%s: empty value", k))
			continue
		}
		attrs[f] = v
	}
	return attrs, problems
}
