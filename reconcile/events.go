package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/store"
)

// notify hands the run's events to the notifier. Plans notify nothing:
// they are previews; nor do runs skipped because another process held the
// lock: they did not happen. A notifier that tracks episodes hears about
// every other sync, events or none, with the pools' state after it, so it
// can tell when a state ends.
func (r *Runner) notify(ctx context.Context, rep *Report) {
	if r.Notifier == nil || rep.Mode != ModeSync || rep.Result == ResultSkipped {
		return
	}
	events := Events(rep, r.Config.Notify.WarnAtPercent)
	rn, ok := r.Notifier.(notify.RunNotifier)
	if !ok {
		if len(events) > 0 {
			r.Notifier.Notify(ctx, events)
		}
		return
	}
	run := notify.Run{RunID: rep.RunID, Events: events}
	for _, t := range rep.Targets {
		run.Targets = append(run.Targets, notify.TargetState{Name: t.Name, OK: t.Error == ""})
	}
	if rep.Result == ResultOK {
		for _, p := range rep.Pools {
			run.Pools = append(run.Pools, notify.PoolState{Name: p.Name, Limit: p.Limit, Unlimited: p.Unlimited,
				Used: p.UsedAfter, Remaining: p.RemainingAfter, Queued: p.QueuedAfter})
		}
	}
	rn.NotifyRun(ctx, run)
}

// Events derives the notification events of a finished sync (SPEC section
// 8). Deciding whether an event starts a new episode is the notifier's job.
func Events(rep *Report, warnAtPercent int) []notify.Event {
	var out []notify.Event
	switch rep.Result {
	case ResultSkipped:
		return nil
	case ResultFailed:
		return append([]notify.Event{{Kind: notify.RunFailed, RunID: rep.RunID,
			Message: "seatsync run failed, nothing was changed by the failed step: " + rep.Error}}, licenseEvents(rep)...)
	case ResultGuardTripped:
		return append([]notify.Event{{Kind: notify.GuardTripped, RunID: rep.RunID,
			Message: guardWhy(rep.Guard) + ". Nothing was written. If this is intended, run `seatsync sync --allow-deprovision` once."}}, licenseEvents(rep)...)
	}
	out = licenseEvents(rep)
	for _, t := range rep.Targets {
		if t.Error != "" {
			out = append(out, notify.Event{Kind: notify.TargetFailed, RunID: rep.RunID, Target: t.Name, Message: fmt.Sprintf(
				"Target %s failed: %s. The store's changes stand; its %d pushes stay pending and are sent again by the next run. `seatsync targets status` lists them.",
				t.Name, t.Error, t.Pending+t.Failed)})
		}
	}
	blocked := map[string][]string{}
	activated := map[string][]string{}
	for _, ch := range rep.Changes {
		if ch.Result != ResultApplied && ch.Result != ResultNoSeat {
			continue
		}
		switch {
		case ch.State == model.Blocked && ch.Reason == string(model.ReasonLicense):
			blocked[ch.Pool] = append(blocked[ch.Pool], ch.Username)
		case ch.Action == ActionActivate && ch.Reason == ReasonSeatFreed:
			activated[ch.Pool] = append(activated[ch.Pool], ch.Username)
		}
	}
	changes := map[string]LimitChange{}
	for _, ch := range rep.LimitChanges {
		if ch.Kind == store.SeatKindPool {
			changes[ch.Name] = ch
		}
	}
	for _, p := range rep.Pools {
		ev := func(kind notify.Kind, people []string, msg string) notify.Event {
			return notify.Event{Kind: kind, RunID: rep.RunID, Pool: p.Name, Limit: p.Limit, Unlimited: p.Unlimited,
				Used: p.UsedAfter, Remaining: p.RemainingAfter, Queued: p.QueuedAfter, People: people, Message: msg}
		}
		if people := blocked[p.Name]; len(people) > 0 && p.Frozen {
			why := "no licence is in force"
			if l := rep.License; l != nil && l.State == LicenseExpired {
				why = "its licence expired on " + l.Expires
			}
			out = append(out, ev(notify.SeatsExhausted, people, fmt.Sprintf(
				"Pool %s gives no new seats, %s (%d seats used, %d queued): %s blocked for license. Install a renewed licence: the next run activates the queue.",
				p.Name, why, p.UsedAfter, p.QueuedAfter, peopleVerb(len(people), "was", "were"))))
		} else if len(people) > 0 {
			out = append(out, ev(notify.SeatsExhausted, people, fmt.Sprintf(
				"Pool %s is full (%d of %d seats used, %d queued): %s blocked for license. Free seats by blocking or deleting profiles, or buy more seats.",
				p.Name, p.UsedAfter, p.Limit, p.QueuedAfter, peopleVerb(len(people), "was", "were"))))
		}
		if ch, ok := changes[p.Name]; ok {
			e := ev(notify.SeatsChanged, activated[p.Name], seatsChangedText(ch, p, len(activated[p.Name])))
			e.OldLimit, e.OldUnlimited = ch.OldLimit, ch.OldUnlimited
			out = append(out, e)
		}
		if people := activated[p.Name]; len(people) > 0 {
			out = append(out, ev(notify.SeatsAvailable, people, fmt.Sprintf(
				"Pool %s had free seats: %s from the queue (%d of %d seats used, %d still queued).",
				p.Name, peopleVerb(len(people), "was activated", "were activated"), p.UsedAfter, p.Limit, p.QueuedAfter)))
		}
		if p.Overage > 0 {
			out = append(out, ev(notify.Overage, nil, fmt.Sprintf(
				"Pool %s is over its limit: %d active for %d seats. Block or delete %d profiles, or buy more seats.",
				p.Name, p.UsedAfter, p.Limit, p.Overage)))
		}
		// A full pool with people queued is the seats_exhausted state, told
		// once per episode; "at 100 %" would only say it again.
		full := p.RemainingAfter == 0 && p.QueuedAfter > 0
		if !p.Unlimited && !p.Frozen && p.Limit > 0 && warnAtPercent > 0 && p.UsedAfter*100 >= warnAtPercent*p.Limit && p.Overage == 0 && !full {
			out = append(out, ev(notify.SeatsLow, nil, fmt.Sprintf(
				"Pool %s is at %d%% (%d of %d seats used, %d remaining).%s", p.Name, licensing.UsedPercent(p.UsedAfter, p.Limit), p.UsedAfter, p.Limit, p.RemainingAfter, forecastSentence(p.Forecast))))
		}
	}
	return out
}

// forecastSentence is " At the current rate, primary is full in about
// 12 days." or "" without a forecast.
func forecastSentence(f *licensing.FillForecast) string {
	if f == nil {
		return ""
	}
	return " " + strings.ToUpper(f.Text[:1]) + f.Text[1:] + "."
}

// seatsChangedText says what a pool's new limit does: to the queue when it
// went up (the run that saw it already gave the free seats, so activated
// people were activated; those a seat is free for but who did not get one
// are activated at the next run), to the seats in use when it went down.
func seatsChangedText(ch LimitChange, p PoolResult, activated int) string {
	from := ""
	if ch.LimitFrom != "" {
		from = " (the licence's " + ch.LimitFrom + ")"
	}
	msg := fmt.Sprintf("Pool %s's limit changed from %s to %s%s.", p.Name,
		limitText(ch.OldLimit, ch.OldUnlimited), limitText(ch.NewLimit, ch.NewUnlimited), from)
	numbers := fmt.Sprintf("%d of %s seats used, %d queued", p.UsedAfter, limitText(p.Limit, p.Unlimited), p.QueuedAfter)
	next := 0
	if !p.Frozen && p.QueuedAfter > 0 {
		next = p.QueuedAfter
		if !p.Unlimited {
			next = min(p.QueuedAfter, p.RemainingAfter)
		}
	}
	switch {
	case activated > 0 && next > 0:
		return fmt.Sprintf("%s %s from the queue, and %s at the next run (%s).", msg,
			peopleVerb(activated, "was activated", "were activated"), peopleVerb(next, "will be activated", "will be activated"), numbers)
	case activated > 0:
		return fmt.Sprintf("%s %s from the queue (%s).", msg, peopleVerb(activated, "was activated", "were activated"), numbers)
	case next > 0:
		return fmt.Sprintf("%s %s at the next run (%s).", msg, peopleVerb(next, "will be activated", "will be activated"), numbers)
	case p.Overage > 0:
		return fmt.Sprintf("%s %d seats are in use, %d over the new limit: nobody new gets a seat until enough are freed (%s).", msg, p.UsedAfter, p.Overage, numbers)
	case p.QueuedAfter > 0:
		return fmt.Sprintf("%s No seat is free: %s waiting (%s).", msg, peopleVerb(p.QueuedAfter, "stays", "stay"), numbers)
	case p.Unlimited:
		return msg + " Nobody waits for a seat."
	default:
		return fmt.Sprintf("%s Nobody is waiting for a seat; %d seats are free (%s).", msg, p.RemainingAfter, numbers)
	}
}

// peopleVerb says "1 person was" or "3 people were".
func peopleVerb(n int, one, many string) string {
	if n == 1 {
		return "1 person " + one
	}
	return fmt.Sprintf("%d people %s", n, many)
}

// ExpiryWarningDays are the days before a licence lapses when
// license_expiring is sent: once as each is reached.
var ExpiryWarningDays = []int{1, 7, 30}

// licenseEvents are the licence's events of a run: license_invalid while
// the licence file is refused, license_expiring 30, 7 and 1 days before it
// lapses, license_expired after.
func licenseEvents(rep *Report) []notify.Event {
	lr := rep.License
	if lr == nil {
		return nil
	}
	var out []notify.Event
	who := ""
	if lr.RegisteredTo != "" {
		who = " of " + lr.RegisteredTo
	}
	if lr.Refused != "" {
		msg := lr.Refused + ". "
		if lr.State == LicenseNone {
			msg += "There is no licence in force: " + noLicenseText(lr) + "."
		} else {
			msg += strings.ToUpper(inForceText(lr)[:1]) + inForceText(lr)[1:] + " stays in force."
		}
		out = append(out, notify.Event{Kind: notify.LicenseInvalid, RunID: rep.RunID, Message: msg})
	}
	switch {
	case lr.State == LicenseExpired:
		out = append(out, notify.Event{Kind: notify.LicenseExpired, RunID: rep.RunID, Message: fmt.Sprintf(
			"The licence%s expired on %s: nobody new gets a seat in %s; people already active stay active and newcomers are queued.",
			who, lr.Expires, strings.Join(lr.FrozenPools, ", "))})
	case lr.State == LicenseValid && lr.DaysLeft != nil:
		for _, d := range ExpiryWarningDays {
			if *lr.DaysLeft <= d {
				out = append(out, notify.Event{Kind: notify.LicenseExpiring, RunID: rep.RunID, Days: d, Message: fmt.Sprintf(
					"The licence%s expires on %s, in %s. After that nobody new gets a seat (people already active stay active).",
					who, lr.Expires, plural(*lr.DaysLeft, "day"))})
				break
			}
		}
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
