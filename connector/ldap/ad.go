package ldap

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// uacDisabled is userAccountControl's ACCOUNTDISABLE bit.
const uacDisabled = 0x2

// neverExpires is accountExpires' "never" value besides 0.
const neverExpires = 0x7FFFFFFFFFFFFFFF

// guidString formats a 16-byte objectGUID as AD shows it
// ("{01234567-89ab-cdef-0123-456789abcdef}" without the braces). The first
// three groups are stored little-endian.
func guidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("objectGUID has %d bytes, not 16", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]),
		binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]),
		b[8:10], b[10:16]), nil
}

// adDisabled reports whether an AD account is disabled: the ACCOUNTDISABLE
// bit of userAccountControl, or an accountExpires in the past.
func adDisabled(uac, accountExpires string, now time.Time) (bool, string) {
	if uac = strings.TrimSpace(uac); uac != "" {
		v, err := strconv.ParseInt(uac, 10, 64)
		if err != nil {
			return false, fmt.Sprintf("userAccountControl %s is not a number", quoted(uac))
		}
		if v&uacDisabled != 0 {
			return true, ""
		}
	}
	if ae := strings.TrimSpace(accountExpires); ae != "" {
		v, err := strconv.ParseInt(ae, 10, 64)
		if err != nil {
			return false, fmt.Sprintf("accountExpires %s is not a number", quoted(ae))
		}
		if v != 0 && v != neverExpires && !fileTime(v).After(now) {
			return true, ""
		}
	}
	return false, ""
}

// fileTime converts a Windows FILETIME (100 ns intervals since 1601-01-01
// UTC) to a time.
func fileTime(v int64) time.Time {
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return time.Unix(v/10_000_000-epochDiff, (v%10_000_000)*100).UTC()
}
