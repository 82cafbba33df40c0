package csv

import (
	"strings"
	"unicode/utf8"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
)

// Kind is the csv source type, for the connector registry.
var Kind = connector.Kind{Settings: NewSettings, Open: Open}

// DefaultDelimiter separates the fields when the file sets no delimiter.
const DefaultDelimiter = ","

// Settings are a csv source's own keys.
type Settings struct {
	Path      string `yaml:"path"`
	Delimiter string `yaml:"delimiter"` // one character, default ","
}

// NewSettings makes an empty Settings, for the connector registry.
func NewSettings() config.Settings { return &Settings{} }

// Defaults implements config.Settings.
func (s *Settings) Defaults(e *config.Entry) {
	if s.Delimiter == "" {
		s.Delimiter = DefaultDelimiter
	}
	e.Resolve(&s.Path)
}

// Validate implements config.Settings.
func (s *Settings) Validate(e *config.Entry) {
	if strings.TrimSpace(s.Path) == "" {
		e.Add("path", "required for a csv source")
	}
	d := s.Delimiter
	r, size := utf8.DecodeRuneInString(d)
	switch {
	case utf8.RuneCountInString(d) != 1 || r == utf8.RuneError && size <= 1:
		e.Add("delimiter", "%q is not one character", d)
	case r == '"' || r == '\n' || r == '\r':
		e.Add("delimiter", "%q cannot be the delimiter", d)
	}
}
