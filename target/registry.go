package target

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/store"
)

// Kind is one target type: its own configuration keys, and how to open a
// Client for a target of that type.
type Kind struct {
	Settings func() config.Settings
	Open     func(t config.Target, log *zap.Logger) (Client, error)
}

// Registry maps each target type to its Kind. It is the only list of
// target types: the configuration loader takes its keys from it.
type Registry map[string]Kind

// Kinds returns the settings constructors the configuration loader needs.
func (r Registry) Kinds() config.Kinds {
	k := config.Kinds{}
	for name, kind := range r {
		k[name] = kind.Settings
	}
	return k
}

// Open opens the Client of a configured target.
func (r Registry) Open(t config.Target, log *zap.Logger) (Client, error) {
	kind, ok := r[t.Type]
	if !ok {
		return nil, fmt.Errorf("target %s: unknown type %q", t.Name, t.Type)
	}
	c, err := kind.Open(t, log)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	return c, nil
}

// Push opens a configured target's client and sends its pending pushes
// (see Pusher.Push). A target that cannot be opened is an error too; the
// Result's Error says why either way.
func (r Registry) Push(ctx context.Context, st store.Store, log *zap.Logger, t config.Target, retryFailed bool) (Result, error) {
	log = log.With(zap.String("target", t.Name))
	res := Result{Name: t.Name, Type: t.Type, Failures: []Failure{}}
	client, err := r.Open(t, log)
	if err == nil {
		res, err = (&Pusher{Store: st, Log: log}).Push(ctx, ConfigOf(t), client, retryFailed)
	}
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	return res, err
}

// Workers is how many requests a target has in flight at most.
const Workers = 4

// ConfigOf is what the Pusher needs of a configured target.
func ConfigOf(t config.Target) Config {
	return Config{
		Name: t.Name, Type: t.Type, Areas: t.Areas, OnDelete: t.OnDelete, Adopt: t.Adopt, Workers: Workers,
	}
}

// Configs converts every configured target.
func Configs(ts []config.Target) []Config {
	out := make([]Config, len(ts))
	for i, t := range ts {
		out[i] = ConfigOf(t)
	}
	return out
}
