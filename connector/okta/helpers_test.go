package okta_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
)

// clock is a fake clock shared by the fake org and the connector: Sleep
// moves it forward at once, so waiting for a rate limit reset takes no
// real time.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// org is a fake Okta org on a fake clock.
type org struct {
	*oktatest.Server
	clock *clock
}

func newOrg(t *testing.T, rateLimit int) *org {
	t.Helper()
	c := newClock()
	s := oktatest.New(oktatest.Options{Now: c.Now, RateLimit: rateLimit})
	t.Cleanup(s.Close)
	return &org{s, c}
}

// people adds n users u0001.. with a default profile; mod changes each.
func (o *org) people(n int, mod func(i int, u *oktatest.User)) []string {
	us := make([]oktatest.User, n)
	for i := range us {
		login := fmt.Sprintf("u%04d@example.com", i+1)
		us[i] = oktatest.User{Profile: map[string]any{
			"login":     login,
			"email":     login,
			"firstName": "Given",
			"lastName":  fmt.Sprintf("Family%04d", i+1),
		}}
		if mod != nil {
			mod(i, &us[i])
		}
	}
	return o.AddUsers(us...)
}

// source returns an okta source configuration for the org, with the
// defaults config.Load would fill in.
func (o *org) source() testConfig {
	return testConfig{
		Source: config.Source{Name: "okta", Type: "okta", Area: "primary", OnLeave: "block", UsernameCase: "lower"},
		Settings: okta.Settings{
			OrgURL:         o.URL,
			Auth:           "token",
			Token:          config.NewSecret(o.Token()),
			Scopes:         okta.DefaultScopes(),
			RateLimitShare: config.Percent{Value: 50, Set: true},
			Timeout:        config.Duration{Duration: 5 * time.Second},
		},
	}
}

// testConfig is a source's configuration as the tests write it: the
// common keys and the okta settings side by side, so that a copy changed
// by one case leaves the others alone.
type testConfig struct {
	config.Source
	okta.Settings
}

// source is the configuration Open takes.
func (c testConfig) source() config.Source {
	set := c.Settings
	c.Source.Settings = &set
	return c.Source
}

func (o *org) options() okta.Options {
	return okta.Options{Now: o.clock.Now, Sleep: o.clock.Sleep}
}

// opener is okta.Open on the org's fake clock.
func (o *org) opener() connector.Opener {
	return func(cfg config.Source, log *zap.Logger) (connector.Source, error) {
		return okta.New(cfg, log, o.options())
	}
}

// pull opens and pulls cfg, returning what was emitted and skipped.
func (o *org) pull(t *testing.T, cfg testConfig) ([]model.Identity, []connector.Skip, error) {
	t.Helper()
	src, err := okta.New(cfg.source(), zaptest.NewLogger(t), o.options())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var ids []model.Identity
	var skips []connector.Skip
	err = src.Pull(context.Background(), func(id model.Identity) error {
		ids = append(ids, id)
		return nil
	}, func(s connector.Skip) { skips = append(skips, s) })
	return ids, skips, err
}

func byID(ids []model.Identity) map[string]model.Identity {
	m := make(map[string]model.Identity, len(ids))
	for _, id := range ids {
		m[id.ExternalID] = id
	}
	return m
}
