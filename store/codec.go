package store

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
)

// Both drivers keep run reports gzip-compressed (gzip.BestSpeed): the
// report of a first sync of 100,000 people is about 40 MB of JSON and
// compresses to under 3 MB, and WriteReport's pieces are compressed as
// they come.

// GzipReport is what r.WriteReportGzip writes, or else compresses the
// report SaveRun is given: what r.WriteReport writes, which is taken as
// it is, or else r.Report, which must be JSON, as a PostgreSQL jsonb
// column would have it. It is nil when there is no report.
func GzipReport(r *Run) ([]byte, error) {
	if r.WriteReportGzip != nil {
		var buf bytes.Buffer
		if err := r.WriteReportGzip(&buf); err != nil {
			return nil, fmt.Errorf("write report: %w", err)
		}
		return buf.Bytes(), nil
	}
	write := r.WriteReport
	if write == nil {
		if r.Report == nil {
			return nil, nil
		}
		if !json.Valid(r.Report) {
			return nil, errors.New("report is not valid JSON")
		}
		write = func(w io.Writer) error {
			_, err := w.Write(r.Report)
			return err
		}
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := write(zw); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress report: %w", err)
	}
	return buf.Bytes(), nil
}

// GunzipReport reads back a report GzipReport wrote.
func GunzipReport(z []byte) (json.RawMessage, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("decompress report: %w", err)
	}
	var buf bytes.Buffer
	// A gzip stream ends with the size of its data (mod 2^32), so the
	// buffer can be made the right size at once. Reports compress about
	// 15 to 1; the hint is held to 64 to 1, so that a damaged trailer
	// cannot ask for much more (a report that compresses better still
	// reads back, the buffer grows). A report written in several members
	// (store.Run.WriteReportGzip) ends with the size of its last, small,
	// one: it is then taken as 15 to 1.
	if n := len(z); n >= 4 {
		size := uint64(binary.LittleEndian.Uint32(z[n-4:]))
		if size < uint64(n) {
			size = 15 * uint64(n)
		}
		size = min(size, 64*uint64(n))
		buf.Grow(int(size) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, fmt.Errorf("decompress report: %w", err)
	}
	return buf.Bytes(), nil
}

// AppendProfileJSON appends p in the JSON form a pending push keeps of a
// profile that is gone (and the audit log kept of whole profiles, before
// entries recorded changes), which ProfileFromJSON reads back. Unlike
// model.Profile's own JSON it keeps ID and Version, and nil versus empty
// groups and attributes; fields with zero values are left out, except
// that empty Groups and Attributes are kept apart from nil ones.
func AppendProfileJSON(b []byte, p *model.Profile) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	for _, f := range [...]struct{ key, value string }{
		{"username", p.Username}, {"email", p.Email}, {"given_name", p.GivenName},
		{"family_name", p.FamilyName}, {"display_name", p.DisplayName}, {"title", p.Title},
		{"department", p.Department}, {"area", p.Area}, {"state", string(p.State)},
		{"block_reason", string(p.BlockReason)}, {"source", p.Source}, {"external_id", p.ExternalID},
	} {
		if f.value != "" {
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, '"', ':')
			b = jsontext.AppendString(b, f.value, false)
		}
	}
	if p.Groups != nil {
		b = append(b, `,"groups":`...)
		b = jsontext.AppendStrings(b, p.Groups, false)
	}
	if p.Attributes != nil {
		b = append(b, `,"attributes":`...)
		b = jsontext.AppendObject(b, p.Attributes, false)
	}
	for _, f := range [...]struct {
		key string
		t   time.Time
	}{
		{"queued_at", p.QueuedAt}, {"activated_at", p.ActivatedAt}, {"blocked_at", p.BlockedAt},
		{"created_at", p.CreatedAt}, {"updated_at", p.UpdatedAt},
	} {
		if !f.t.IsZero() {
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, '"', ':', '"')
			b = f.t.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

// ProfileFromJSON reads what AppendProfileJSON wrote (or a whole copy an
// older audit entry holds), times in UTC.
func ProfileFromJSON(b []byte) (*model.Profile, error) {
	var w wholeCopy
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return w.profile(), nil
}
