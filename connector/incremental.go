package connector

import (
	"context"
	"errors"

	"github.com/seatsync/seatsync/model"
)

// Incremental is an optional capability of a Source configured with
// `incremental: true`: it reads only what changed since a cursor it gave
// before (an AD DirSync cookie, an RFC 4533 sync cookie, an Okta
// timestamp).
//
// The rules that keep people's seats safe:
//
//   - An identity in Changes.Upsert is given in full, as Pull would give
//     it; one the source does not mention is unchanged, never gone.
//   - Delete is called only for an entry the source itself says is gone
//     from the scope: deleted, moved out of the base, or no longer
//     matching the filter. An entry that could not be read is a Skip, as
//     in Pull, never a Delete.
//   - When the cursor is "" (the first run) or the source refuses it (an
//     expired or garbled cookie, a control the server will not serve), the
//     connector pulls in full instead: it emits every identity in scope
//     through Upsert, and says so with Result.Full (and, for a refused
//     cursor, Result.Fallback). The caller then treats the pull as a full
//     Pull: whoever is not in it has left.
//   - A read cut short is an error, and the caller keeps the old cursor.
type Incremental interface {
	PullChanges(ctx context.Context, cursor string, sink ChangeSink) (Result, error)
}

// ChangeSink receives an incremental read.
type ChangeSink struct {
	// Upsert receives an identity that was added or changed, in full.
	Upsert func(model.Identity) error
	// Delete receives the external id of an identity that left the
	// source's scope.
	Delete func(externalID string) error
	// Skip receives an entry that could not be read.
	Skip func(Skip)
}

// Result is how an incremental read went.
type Result struct {
	// Cursor is where the next read starts. The caller stores it only
	// once the run that used this read has committed.
	Cursor string
	// Full is set when every identity in scope was emitted: a first read,
	// or a fallback.
	Full bool
	// Fallback says why a cursor was not used ("the server refused the
	// sync cookie: ..."), "" when it was or when there was none.
	Fallback string
	// NoDeletes is set when this read cannot see deletions (DirSync
	// without the replication right, an Okta token that may not read the
	// System Log): they wait for the next full pull.
	NoDeletes bool
}

// ErrCursor is wrapped by an error of PullChanges that finds, part way
// through, that the cursor it was given cannot be used after all (once it
// has emitted, it cannot start again in full). The run fails, writing
// nothing, and the next run reads the source in full.
var ErrCursor = errors.New("the cursor cannot be used")
