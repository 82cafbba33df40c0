package config

import "go.uber.org/zap/zapcore"

// Secret holds a password, token or DSN. It never prints its value: not
// through fmt, not through zap, not through JSON or YAML encoding.
// Code that needs the value calls Reveal.
type Secret struct{ value string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a value was configured.
func (s Secret) IsSet() bool { return s.value != "" }

const mask = "********"

func (s Secret) String() string {
	if s.value == "" {
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
