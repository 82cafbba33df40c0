package config

import (
	"fmt"
	"io"
	"strconv"

	"go.uber.org/zap/zapcore"
)

// Secret holds a password, token or DSN. It never prints its value: not
// through fmt, not through zap, not through JSON or YAML encoding.
// Code that needs the value calls Reveal.
//
// The value sits behind a pointer because fmt, when a verb does not suit
// a value (%s of a struct holding an int and a *Email, say), prints the
// struct's fields by reflection without calling their methods; a pointer
// it prints as an address. Compare secrets with Equal (go-cmp uses it),
// not ==.
type Secret struct{ value *string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{&v} }

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsSet reports whether a value was configured.
func (s Secret) IsSet() bool { return s.Reveal() != "" }

// Equal reports whether two secrets hold the same value.
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

const mask = "********"

func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return mask
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "config.Secret(" + s.String() + ")" }

// MarshalText masks the value in JSON, YAML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalLogObject masks the value in zap logs.
func (s Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("value", s.String())
	return nil
}

// Format masks the value under every fmt verb (%v, %+v, %#v, %s, %q, %x,
// %d...), so no format string can print a secret by accident.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, s.GoString())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(s.String()))
	default:
		io.WriteString(f, s.String())
	}
}
