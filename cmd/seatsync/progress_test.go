package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	p := newProgressLine(&out)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.update("corp-ad", 1000, 1)
	p.update("corp-ad", 2000, 2) // within the interval: not drawn
	clock = clock.Add(time.Second)
	p.update("okta", 12345, 62)
	p.done()
	got := out.String()
	want := "\r\x1b[Kpulling: corp-ad 1,000 identities, 1 pages" +
		"\r\x1b[Kpulling: corp-ad 2,000 identities, 2 pages · okta 12,345 identities, 62 pages" +
		"\r\x1b[K"
	if got != want {
		t.Errorf("progress output\n got %q\nwant %q", got, want)
	}
	if isTerminal(&out) {
		t.Error("a buffer is not a terminal")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if strings.Contains(thousands(100), ",") {
		t.Error("comma in 100")
	}
}
