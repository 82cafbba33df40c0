package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
	"github.com/seatsync/seatsync/target"
)

// flaky is an application that is down for its first downFor requests.
type flaky struct {
	mu      sync.Mutex
	downFor int
	calls   int
	created []string
}

func (f *flaky) call() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.downFor {
		return &target.Error{Status: 503, Message: "unavailable"}
	}
	return nil
}

func (f *flaky) Render(p *model.Profile, active bool) map[string]string {
	return map[string]string{"userName": p.Username}
}
func (f *flaky) Find(context.Context, []string) (map[string]target.User, error) {
	return map[string]target.User{}, f.call()
}
func (f *flaky) Create(_ context.Context, p *model.Profile, active bool) (target.User, error) {
	if err := f.call(); err != nil {
		return target.User{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, p.Username)
	return target.User{ID: "u-" + p.Username, UserName: p.Username, Active: active}, nil
}
func (f *flaky) Update(context.Context, target.User, *model.Profile, bool) (target.User, error) {
	return target.User{}, errors.New("not used")
}
func (f *flaky) Deactivate(context.Context, target.User) (target.User, error) {
	return target.User{}, errors.New("not used")
}
func (f *flaky) Delete(context.Context, target.User) error           { return errors.New("not used") }
func (f *flaky) List(context.Context, func(target.User) error) error { return nil }

type noSettings struct{}

func (noSettings) Defaults(*config.Entry) {}
func (noSettings) Validate(*config.Entry) {}

// TestPendingPushesRetried: pushes a run left pending (the application
// was down) are sent again between runs, backing off, until they go
// through; then the backoff resets.
func TestPendingPushesRetried(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tc := config.Target{Name: "app", Type: "flaky", OnDelete: "deactivate", Adopt: true, Timeout: config.Duration{Duration: time.Second}}
	err = st.WithTx(ctx, func(tx store.Tx) error {
		for _, u := range []string{"ann", "ben"} {
			p := model.Profile{Username: u, Area: "primary", State: model.Active, Source: "hr", ExternalID: u}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
			if err := target.MarkPending(ctx, tx, target.Configs([]config.Target{tc}), nil, &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	app := &flaky{downFor: 3} // the lookup of two retries, then up
	cfg := &config.Config{Targets: []config.Target{tc}}
	d := New(cfg, st, nil, nil, nil, zap.NewNop())
	d.TargetTypes = target.Registry{"flaky": {
		Settings: func() config.Settings { return noSettings{} },
		Open:     func(config.Target, *zap.Logger) (target.Client, error) { return app, nil },
	}}
	d.RetryFirst = 20 * time.Millisecond
	d.runCtx, d.cancelRun = context.WithCancel(ctx)
	defer d.cancelRun()

	d.retryLeftover(ctx) // as serve does at start-up
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, f, err := st.TargetCounts(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if p+f == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes still pending after 30 s: %d pending, %d failed, %d calls", p, f, app.calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.runs.Wait()
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.created) != 2 || app.calls < 4 {
		t.Errorf("created %v in %d calls; want ann and ben, after the application came back", app.created, app.calls)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retryAttempt != 0 || d.retry != nil {
		t.Errorf("after the pushes went through: attempt %d, timer %v; want the backoff reset", d.retryAttempt, d.retry)
	}
}
