package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A run's page shows the first rows of a report that may hold 100,000
// changes. encoding/json cannot skip the others without decoding them, or
// scanning them two or three times over (checking, skipping, decoding).
// This scanner only finds where each member of the report and each
// element of its arrays ends, in one pass; what the page shows is decoded
// by encoding/json. BenchmarkReadReport, a report of 100,000 changes
// (38 MB): encoding/json alone 3.1 s/op and 164 MB allocated, this
// 0.32 s/op and 1.7 MB. FuzzReadReport holds it to the library's reading
// of the same bytes.

var errJSONEnd = errors.New("the report's JSON ends in the middle of a value")

// jsonMembers calls fn with each member of the JSON object b, its key
// decoded and its value as it is.
func jsonMembers(b []byte, fn func(key string, value []byte) error) error {
	i := jsonSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("the report is not a JSON object")
	}
	i = jsonSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return jsonRest(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("want a key at byte %d of the report", i)
		}
		end, err := jsonSkipString(b, i)
		if err != nil {
			return err
		}
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return err
		}
		i = jsonSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("want ':' at byte %d of the report", i)
		}
		i = jsonSpace(b, i+1)
		if end, err = jsonSkip(b, i); err != nil {
			return err
		}
		if err := fn(key, b[i:end]); err != nil {
			return err
		}
		i = jsonSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = jsonSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return jsonRest(b, i+1)
		default:
			return fmt.Errorf("want ',' or '}' at byte %d of the report", i)
		}
	}
}

// jsonElements calls fn with each element of the JSON array b, as it is.
// null is an empty array.
func jsonElements(b []byte, fn func(value []byte) error) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) == 0 || b[0] != '[' {
		return errors.New("want a JSON array")
	}
	i := jsonSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		return jsonRest(b, i+1)
	}
	for {
		end, err := jsonSkip(b, i)
		if err != nil {
			return err
		}
		if err := fn(b[i:end]); err != nil {
			return err
		}
		i = jsonSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = jsonSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			return jsonRest(b, i+1)
		default:
			return fmt.Errorf("want ',' or ']' at byte %d of an array", i)
		}
	}
}

// jsonRest checks that only white space follows a value.
func jsonRest(b []byte, i int) error {
	if i = jsonSpace(b, i); i != len(b) {
		return fmt.Errorf("unexpected byte %q after the JSON value", b[i])
	}
	return nil
}

func jsonSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonSkip returns the index just past the JSON value that starts at
// b[i]. A scalar that is not valid JSON (tru) is left to encoding/json
// to refuse when it decodes the value; an object or array is only
// required to close.
func jsonSkip(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	switch b[i] {
	case '"':
		return jsonSkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := jsonSkipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errJSONEnd
	case ',', ':', '}', ']':
		return 0, fmt.Errorf("want a value at byte %d, got %q", i, b[i])
	}
	start := i
	for i < len(b) && !jsonEndsScalar(b[i]) {
		i++
	}
	if i == start {
		return 0, errJSONEnd
	}
	return i, nil
}

func jsonEndsScalar(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// jsonSkipString returns the index just past the string that starts at
// b[i] (a '"').
func jsonSkipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errJSONEnd
}
