package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Path is the YAML path of the value, such as "sources[1].tls.mode";
	// "" for the file as a whole.
	Path string `json:"path"`
	// Line is the 1-based line of the offending node; 0 when the problem
	// has no single place (an empty file, say).
	Line int `json:"line"`
	// Message says what is wrong. It never contains a secret's value.
	Message string `json:"message"`
}

// String formats the problem as "line 14: sources[1].tls.mode: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a configuration file. Parse and Load
// return it as their error (use errors.As to get the list); it is never
// empty when returned.
type Problems []Problem

// Error prints one problem per line, sorted by line.
func (ps Problems) Error() string {
	sorted := slices.Clone(ps)
	sortProblems(sorted)
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by line, then path; problems on the same
// path and line keep the order they were found in.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
}
