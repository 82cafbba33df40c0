package main

import (
	"fmt"
	"time"
)

// table prints the figures as a Markdown table: times are the best of
// b.rounds, ratios are to the ldapsearch time (or to the same run at
// b.n profiles) in this run.
func (b *bench) table(dump time.Duration, first, full result, noop, changed [2]result, start [2]result) {
	x := func(d time.Duration) float64 { return d.Seconds() / dump.Seconds() }
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	mb := func(r result) string { return fmt.Sprintf("%d MB", r.rss>>20) }
	secs := func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
	small, big := profilesName(b.n), profilesName(b.big)
	fmt.Printf("\n%d people in slapd; best of %d runs each; CPU is user+sys of the best run\n\n", b.n, b.rounds)
	fmt.Println("| run | store | time | × ldapsearch | CPU | peak RSS | target | |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	fmt.Printf("| ldapsearch full dump (yardstick) | | %s | 1 | | | | |\n", secs(dump))
	fmt.Printf("| first sync (incremental: true, no cursor: full read) | %s | %s | %.2f× | %s | %s | ≤ 3×, ≤ 250 MB | %s |\n",
		small, secs(first.took), x(first.took), secs(first.cpu), mb(first), verdict(x(first.took) <= 3 && first.rss <= 250<<20))
	fmt.Printf("| no-op re-sync read in full (`--full`) | %s | %s | %.2f× | %s | %s | | |\n",
		small, secs(full.took), x(full.took), secs(full.cpu), mb(full))
	for i, store := range []string{small, big} {
		fmt.Printf("| incremental, no-op | %s | %s | %.3f× | %s | %s | ≤ 0.05× | %s |\n",
			store, secs(noop[i].took), x(noop[i].took), secs(noop[i].cpu), mb(noop[i]), verdict(x(noop[i].took) <= 0.05))
		fmt.Printf("| incremental, 100 changes | %s | %s | %.3f× | %s | %s | ≤ 0.1× | %s |\n",
			store, secs(changed[i].took), x(changed[i].took), secs(changed[i].cpu), mb(changed[i]), verdict(x(changed[i].took) <= 0.1))
	}
	fmt.Println()
	for _, r := range []struct {
		what     string
		at, from result
	}{{"incremental, no-op", noop[1], noop[0]}, {"incremental, 100 changes", changed[1], changed[0]}} {
		ratio := r.at.took.Seconds() / r.from.took.Seconds()
		fmt.Printf("%s at %s profiles: %.2f× its time at %s (target ≤ 2×: %s)\n", r.what, big, ratio, small, verdict(ratio <= 2))
	}
	fmt.Printf("fixed costs: process start (seatsync version) %s, with the configuration loaded (seatsync validate) %s\n",
		secs(start[0].took), secs(start[1].took))
}

func profilesName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
