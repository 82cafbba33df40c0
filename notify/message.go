package notify

import (
	"fmt"
	"strings"
)

// MaxPeople is how many people a message lists by name; the rest are
// counted ("and 12 more").
const MaxPeople = 50

// Subject is the one-line summary of e, used as the mail subject and the
// Slack header.
func Subject(e Event) string {
	var s string
	switch e.Kind {
	case SeatsExhausted:
		s = fmt.Sprintf("Pool %s is full: %s queued", e.Pool, people(e.Queued))
	case SeatsAvailable:
		s = fmt.Sprintf("Pool %s had free seats: %s activated from the queue", e.Pool, people(len(e.People)))
	case SeatsLow:
		pct := 0
		if e.Limit > 0 {
			pct = e.Used * 100 / e.Limit
		}
		s = fmt.Sprintf("Pool %s is at %d%%: %d of %d seats used", e.Pool, pct, e.Used, e.Limit)
	case Overage:
		s = fmt.Sprintf("Pool %s is over its limit: %d of %d seats used", e.Pool, e.Used, e.Limit)
	case SeatsChanged:
		s = fmt.Sprintf("Pool %s's limit changed from %s to %s", e.Pool, limitWord(e.OldLimit, e.OldUnlimited), limitWord(e.Limit, e.Unlimited))
	case RunFailed:
		s = "A sync run failed"
	case GuardTripped:
		s = "A sync was refused by the deprovision guard"
	case TargetFailed:
		s = fmt.Sprintf("Target %s failed: pushes stay pending", e.Target)
	case LicenseExpiring:
		s = fmt.Sprintf("The licence expires within %d days", e.Days)
		if e.Days == 1 {
			s = "The licence expires within a day"
		}
	case LicenseExpired:
		s = "The licence has expired: nobody new gets a seat"
	case LicenseInvalid:
		s = "The licence file was refused"
	default:
		s = string(e.Kind)
		if e.Pool != "" {
			s += " in pool " + e.Pool
		}
	}
	return "[seatsync] " + s
}

func people(n int) string {
	if n == 1 {
		return "1 person"
	}
	return fmt.Sprintf("%d people", n)
}

// Body is the plain-text message for e: what happened, the pool's
// numbers, the people affected (up to MaxPeople) and what to do.
func Body(e Event) string {
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString("\n\n")
	if e.Pool != "" {
		fmt.Fprintf(&b, "Pool:      %s\n", e.Pool)
		if e.Kind == SeatsChanged {
			fmt.Fprintf(&b, "Old limit: %s\n", limitWord(e.OldLimit, e.OldUnlimited))
		}
		if e.Unlimited {
			b.WriteString("Limit:     unlimited\n")
		} else {
			fmt.Fprintf(&b, "Limit:     %d\n", e.Limit)
		}
		fmt.Fprintf(&b, "Used:      %d\n", e.Used)
		if !e.Unlimited {
			fmt.Fprintf(&b, "Remaining: %d\n", e.Remaining)
		}
		fmt.Fprintf(&b, "Queued:    %d\n\n", e.Queued)
	}
	if len(e.People) > 0 {
		fmt.Fprintf(&b, "%s (%d):\n", peopleHeading(e.Kind), len(e.People))
		for _, p := range Cap(e.People, MaxPeople) {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
		if n := len(e.People) - MaxPeople; n > 0 {
			fmt.Fprintf(&b, "  and %d more\n", n)
		}
		b.WriteString("\n")
	}
	if todo := whatToDo(e.Kind); todo != "" {
		fmt.Fprintf(&b, "What to do: %s\n\n", todo)
	}
	fmt.Fprintf(&b, "Run: %s\n", e.RunID)
	b.WriteString("You get this message once per episode: not again while the state lasts.\n")
	return b.String()
}

func peopleHeading(k Kind) string {
	switch k {
	case SeatsExhausted:
		return "Blocked for license and queued for a seat"
	case SeatsAvailable, SeatsChanged:
		return "Activated from the queue"
	default:
		return "People affected"
	}
}

func whatToDo(k Kind) string {
	switch k {
	case SeatsExhausted, Overage:
		return "free seats by blocking or deleting profiles that no longer need one, or buy more seats and raise the pool's limit."
	case SeatsLow:
		return "free seats by blocking or deleting profiles that no longer need one, or buy more seats before the pool is full."
	case SeatsChanged:
		return "nothing if the change was intended; queued people get the free seats in queue order. If a limit went down by mistake, check the configuration or the licence file (`seatsync license show -c FILE`)."
	case SeatsAvailable:
		return "nothing; queued people get the next free seats in queue order."
	case RunFailed:
		return "read the error above and in the log, fix its cause (a source or the store unreachable); the next run retries."
	case LicenseExpiring:
		return "ask the vendor for the renewed licence and put it (with its .sig) in place of licensing.license_file; seatsync reads it at the next run."
	case LicenseExpired:
		return "put the renewed licence (with its .sig) in place of licensing.license_file; the next run activates the queue in order."
	case LicenseInvalid:
		return "put the vendor's licence file and its .sig in place (`seatsync license verify -c FILE` checks them)."
	case GuardTripped:
		return "check why so many profiles would be blocked or deleted; if it is intended, run `seatsync sync --allow-deprovision` once."
	}
	return ""
}
