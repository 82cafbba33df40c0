// Package connector defines the Source interface every connector
// implements, and the registry that maps a configured `type` to its
// connector.
package connector

import (
	"context"
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

// Opener builds a Source from its configuration, which the loader has
// completed and checked (cfg.Settings holds the type's own Settings). It
// must not do network I/O. The logger already names the source (field
// "source"); the connector does not add it again.
type Opener func(cfg config.Source, log *zap.Logger) (Source, error)

// Kind is one source type: its own configuration keys, and how to open a
// Source of that type.
type Kind struct {
	Settings func() config.Settings
	Open     Opener
}

// Registry maps each source type to its Kind. It is the only list of
// source types: the configuration loader takes its keys from it.
type Registry map[string]Kind

// Kinds returns the settings constructors the configuration loader needs.
func (r Registry) Kinds() config.Kinds {
	k := config.Kinds{}
	for name, kind := range r {
		k[name] = kind.Settings
	}
	return k
}

// Open builds the configured source, or explains why it cannot.
func (r Registry) Open(cfg config.Source, log *zap.Logger) (Source, error) {
	kind, ok := r[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("source %s: unknown type %q (one of %s)", cfg.Name, cfg.Type, strings.Join(r.Kinds().Names(), ", "))
	}
	return kind.Open(cfg, log)
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
