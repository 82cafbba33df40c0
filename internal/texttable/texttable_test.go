package texttable

import (
	"fmt"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	var b strings.Builder
	tw := New(&b)
	fmt.Fprintln(tw, "NAME\tTITLE\tREASON")
	fmt.Fprintf(tw, "%s\t%s\t%s\n", "alice", Cell(strings.Repeat("é", 5<<20)), "")
	fmt.Fprintf(tw, "%s\t%s\t%s\n", "bob", "Engineer", "license")
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing spaces: %q", l)
		}
		if n := len([]rune(l)); n > 100 {
			t.Errorf("a line of %d characters: a huge cell was not capped", n)
		}
	}
	if !strings.Contains(lines[1], strings.Repeat("é", MaxCell-1)+"…") || strings.Contains(lines[1], strings.Repeat("é", MaxCell)) {
		t.Errorf("the capped cell: %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "bob    Engineer") || !strings.HasSuffix(lines[2], "license") {
		t.Errorf("alignment: %q", lines[2])
	}
	if got := Cell("short"); got != "short" {
		t.Errorf("Cell(short) = %q", got)
	}
}
