package csv

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// changes is what one PullChanges produced.
type changes struct {
	Upserts []model.Identity
	Deletes []string
	Skips   []connector.Skip
}

func pullChanges(t *testing.T, path, cursor string) (changes, connector.Result, error) {
	t.Helper()
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, zap.NewNop())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var got changes
	res, err := src.(connector.Incremental).PullChanges(context.Background(), cursor, connector.ChangeSink{
		Upsert: func(id model.Identity) error { got.Upserts = append(got.Upserts, id); return nil },
		Delete: func(id string) error { got.Deletes = append(got.Deletes, id); return nil },
		Skip:   func(s connector.Skip) { got.Skips = append(got.Skips, s) },
	})
	return got, res, err
}

// fullPull is what Pull gives for the file, for comparison.
func fullPull(t *testing.T, path string) changes {
	t.Helper()
	src, err := Open(config.Source{Name: "hr", Type: "csv", Settings: &Settings{Path: path}}, zap.NewNop())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var got changes
	err = src.Pull(context.Background(),
		func(id model.Identity) error { got.Upserts = append(got.Upserts, id); return nil },
		func(s connector.Skip) { got.Skips = append(got.Skips, s) })
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	return got
}

const hrV1 = "external_id,username,enabled\nE1,alice,true\nE2,bob,true\nE3,carol,1\nE4,dave\n"

// hrV2 is hrV1 with one person disabled, the same number of bytes.
const hrV2 = "external_id,username,enabled\nE1,alice,true\nE2,bob,true\nE3,carol,0\nE4,dave\n"

func setMtime(t *testing.T, path string, mt time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestPullChangesFirstRunIsFull(t *testing.T) {
	path := writeFile(t, hrV1)
	got, res, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.Fallback != "" || res.NoDeletes || res.Cursor == "" {
		t.Errorf("result = %+v, want Full with a cursor and no fallback", res)
	}
	if diff := cmp.Diff(fullPull(t, path), got); diff != "" {
		t.Errorf("first PullChanges is not Pull (-pull +changes):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(hrV1))
	want := fmt.Sprintf("csv1 %d %d %x", len(hrV1), fi.ModTime().UnixNano(), sum)
	if res.Cursor != want {
		t.Errorf("cursor = %q, want %q", res.Cursor, want)
	}
}

func TestPullChangesUnchangedFile(t *testing.T) {
	path := writeFile(t, hrV1)
	_, first, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	got, res, err := pullChanges(t, path, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(changes{}, got); diff != "" {
		t.Errorf("an unchanged file emitted something:\n%s", diff)
	}
	want := connector.Result{Cursor: first.Cursor}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// A file rewritten with the same content (an export job that runs again)
// has a new mtime and the same hash: it is unchanged, and the cursor
// takes the new mtime.
func TestPullChangesTouchedFile(t *testing.T) {
	path := writeFile(t, hrV1)
	setMtime(t, path, time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC))
	_, first, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(hrV1), 0o600); err != nil {
		t.Fatal(err)
	}
	setMtime(t, path, time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC))
	got, res, err := pullChanges(t, path, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(changes{}, got); diff != "" {
		t.Errorf("a touched file emitted something:\n%s", diff)
	}
	if res.Full || res.Cursor == first.Cursor {
		t.Errorf("result = %+v, want not Full, with a cursor other than %q", res, first.Cursor)
	}
	// The next run, with the new cursor, is unchanged too.
	if _, again, err := pullChanges(t, path, res.Cursor); err != nil || again.Full || again.Cursor != res.Cursor {
		t.Errorf("run after the touch = %+v, %v; want unchanged with the same cursor", again, err)
	}
}

// A change of the same size whose mtime is set back to what it was (a
// copy that keeps times, or a rewrite within the mtime's granularity) is
// caught by the hash.
func TestPullChangesSameSizeAndMtime(t *testing.T) {
	if len(hrV1) != len(hrV2) {
		t.Fatal("the two versions must have the same size")
	}
	path := writeFile(t, hrV1)
	mt := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	setMtime(t, path, mt)
	_, first, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(hrV2), 0o600); err != nil {
		t.Fatal(err)
	}
	setMtime(t, path, mt)
	got, res, err := pullChanges(t, path, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.Fallback != "" || res.Cursor == first.Cursor {
		t.Errorf("result = %+v, want Full with a new cursor", res)
	}
	if diff := cmp.Diff(fullPull(t, path), got); diff != "" {
		t.Errorf("changed file (-pull +changes):\n%s", diff)
	}
	if len(got.Upserts) != 3 || got.Upserts[2].Enabled || len(got.Skips) != 1 {
		t.Errorf("upserts = %+v, skips = %+v; want E3 disabled and E4 skipped", got.Upserts, got.Skips)
	}
}

func TestPullChangesOtherSize(t *testing.T) {
	path := writeFile(t, hrV1)
	_, first, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(hrV1+"E5,dave,true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, res, err := pullChanges(t, path, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.Fallback != "" {
		t.Errorf("result = %+v, want Full", res)
	}
	if diff := cmp.Diff(fullPull(t, path), got); diff != "" {
		t.Errorf("changed file (-pull +changes):\n%s", diff)
	}
}

func TestPullChangesGarbageCursor(t *testing.T) {
	path := writeFile(t, hrV1)
	_, good, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []string{
		"garbage",
		"csv1 12 34",
		"csv1 -1 0 " + strings.Repeat("00", 32),
		"csv1 12 34 nothex",
		"csv1 12 34 abcd",
		"csv2" + strings.TrimPrefix(good.Cursor, "csv1"),
	} {
		got, res, err := pullChanges(t, path, cursor)
		if err != nil {
			t.Fatalf("cursor %q: %v", cursor, err)
		}
		if !res.Full || res.Fallback == "" || res.Cursor != good.Cursor {
			t.Errorf("cursor %q: result = %+v, want Full with a fallback and cursor %q", cursor, res, good.Cursor)
		}
		if diff := cmp.Diff(fullPull(t, path), got); diff != "" {
			t.Errorf("cursor %q (-pull +changes):\n%s", cursor, diff)
		}
	}
}

// A read that fails is an error with no cursor, whatever the cursor was,
// and a file that looked unchanged in size emits nothing before it fails.
func TestPullChangesCutFile(t *testing.T) {
	whole := "external_id,username,given_name\nE1,alice,Alice\nE2,bob,Bob\n"
	cut := "external_id,username,given_name\nE1,alice,Alice\nE2,bob,Bob\nE3,caro"
	path := writeFile(t, whole)
	_, first, err := pullChanges(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []string{"", first.Cursor} {
		got, res, err := pullChanges(t, path, cursor)
		if err == nil || !strings.Contains(err.Error(), "cut off") {
			t.Errorf("cursor %q: error = %v, want the file looks cut off", cursor, err)
		}
		if res.Cursor != "" {
			t.Errorf("cursor %q: a failed read returned cursor %q", cursor, res.Cursor)
		}
		_ = got // what was streamed before the error does not count
	}
}
