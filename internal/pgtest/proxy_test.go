package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestProxyCut: through the proxy a session works; cut, it hears nothing
// and is not closed either (its query times out); restored, new sessions
// work again.
func TestProxyCut(t *testing.T) {
	s := Shared(t)
	p, err := NewProxy(s.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dsn := p.URL(s.NewDatabase(t))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = conn.Ping(short)
	cancel()
	if err == nil || short.Err() == nil {
		t.Fatalf("ping during a cut: %v; want it to time out", err)
	}
	p.Restore()
	again, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect after restore: %v", err)
	}
	defer again.Close(ctx)
	if err := again.Ping(ctx); err != nil {
		t.Fatalf("ping after restore: %v", err)
	}
}
