package postgres

import (
	"os"
	"testing"

	"github.com/seatsync/seatsync/internal/pgtest"
)

// TestMain stops the PostgreSQL server the tests share. (The store's own
// tests need the same: keep one TestMain in this package.)
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
