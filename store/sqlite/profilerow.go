package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/seatsync/seatsync/model"
)

// profileRecord is the SELECT expression every profile read uses. It packs
// a row into one text value: the columns in the order parseProfile reads
// them, separated by NUL bytes, with NULL as "".
//
// Reading one column instead of 21 is what makes Profiles fast enough for
// 100,000 profiles: the driver takes a mutex and allocates for every column
// of every row, and this way the fields of a profile share the memory of
// one string instead. It works because no text column holds a NUL byte
// (profileArgs refuses them, as PostgreSQL would) and the JSON of groups
// and attributes escapes it, and because "" is never a stored JSON text, so
// it can stand for NULL there.
const profileRecord = `concat_ws(char(0),
	id, version, username, email, given_name, family_name, display_name, title, department,
	ifnull(groups, ''), ifnull(attributes, ''), area, state, block_reason, source, external_id,
	ifnull(queued_at, ''), ifnull(activated_at, ''), ifnull(blocked_at, ''),
	ifnull(created_at, ''), ifnull(updated_at, ''))`

// profileRecordFields is the number of columns in a profileRecord.
const profileRecordFields = 21

var errBadRecord = errors.New("malformed profile record")

// parseProfile reads a profileRecord.
func parseProfile(s string) (model.Profile, error) {
	var f [profileRecordFields]string
	for i := range len(f) - 1 {
		var ok bool
		if f[i], s, ok = strings.Cut(s, "\x00"); !ok {
			return model.Profile{}, errBadRecord
		}
	}
	f[len(f)-1] = s
	if strings.IndexByte(s, 0) >= 0 {
		return model.Profile{}, errBadRecord
	}

	var ints [7]sql.NullInt64 // id, version, then the five times
	for i, k := range [...]int{0, 1, 16, 17, 18, 19, 20} {
		if f[k] == "" {
			continue
		}
		n, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return model.Profile{}, fmt.Errorf("%w: field %d: %w", errBadRecord, k, err)
		}
		ints[i] = sql.NullInt64{Int64: n, Valid: true}
	}
	p := model.Profile{
		ID:          ints[0].Int64,
		Version:     ints[1].Int64,
		Username:    f[2],
		Email:       f[3],
		GivenName:   f[4],
		FamilyName:  f[5],
		DisplayName: f[6],
		Title:       f[7],
		Department:  f[8],
		Area:        f[11],
		State:       model.State(f[12]),
		BlockReason: model.Reason(f[13]),
		Source:      f[14],
		ExternalID:  f[15],
		QueuedAt:    timeOf(ints[2]),
		ActivatedAt: timeOf(ints[3]),
		BlockedAt:   timeOf(ints[4]),
		CreatedAt:   timeOf(ints[5]),
		UpdatedAt:   timeOf(ints[6]),
	}
	var err error
	if p.Groups, err = decodeGroups(sql.NullString{String: f[9], Valid: f[9] != ""}); err != nil {
		return model.Profile{}, fmt.Errorf("profile %s: %w", p.Username, err)
	}
	if p.Attributes, err = decodeAttributes(sql.NullString{String: f[10], Valid: f[10] != ""}); err != nil {
		return model.Profile{}, fmt.Errorf("profile %s: %w", p.Username, err)
	}
	return p, nil
}
