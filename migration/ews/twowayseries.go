package ews

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// maxSeriesIndex bounds how far a series is expanded to find the
// instance index of an exception: Exchange's own expansion of a series
// without end, and the largest NumberOfOccurrences, stay below it.
const maxSeriesIndex = 1000

// occurrenceEdit is an overridden instance of a Mailyard series as EWS
// names it: its 1-based instance index and the properties it overrides.
type occurrenceEdit struct {
	index int
	item  CalendarItem
	files []FileAttachment // the overriding VEVENT's inline ATTACHs
}

// seriesEdits are the exceptions of a Mailyard series that EWS keeps
// apart from the series' pattern: the overriding VEVENTs (RECURRENCE-ID,
// RFC 5545 §3.8.4.4) as modified occurrences and the EXDATEs (§3.8.5.1)
// as deleted ones, each by its instance index. unmatched counts those
// that name no instance of the series.
type seriesEdits struct {
	modified  []occurrenceEdit
	deleted   []int
	unmatched int
}

func (s seriesEdits) empty() bool { return len(s.modified) == 0 && len(s.deleted) == 0 }

// editsOf finds the exceptions of cal's series. The instance index of a
// RECURRENCE-ID or EXDATE is its position in the series as EWS expands
// it: the RRULE from DTSTART in DTSTART's zone, counting only the days
// the pattern matches (EWS, like rrule-go, does not count a DTSTART off
// the pattern, [MS-OXWSCDATA] RecurrenceType), deleted occurrences
// included, so that an index stays put when others are deleted.
func editsOf(cal *ical.Calendar) (seriesEdits, error) {
	var out seriesEdits
	var master *ical.Component
	var overrides []*ical.Component
	for _, c := range cal.Children {
		switch {
		case c.Name != ical.CompEvent:
		case c.Props.Get(ical.PropRecurrenceID) != nil:
			overrides = append(overrides, c)
		case master == nil:
			master = c
		}
	}
	if master == nil || master.Props.Get(ical.PropRecurrenceRule) == nil {
		return out, nil
	}
	start, z, _, err := readTime(master.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		return out, fmt.Errorf("ews: DTSTART: %w", err)
	}
	opt, err := rrule.StrToROption(master.Props.Get(ical.PropRecurrenceRule).Value)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotRepresentable, err)
	}
	opt.Dtstart = start.In(z)
	rule, err := rrule.NewRRule(*opt)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrNotRepresentable, err)
	}
	var wanted []time.Time
	var exdates []time.Time
	for _, p := range master.Props.Values(ical.PropExceptionDates) {
		for _, v := range strings.Split(p.Value, ",") {
			q := p
			q.Value = v
			t, _, _, err := readTime(&q)
			if err != nil {
				return out, fmt.Errorf("ews: EXDATE: %w", err)
			}
			exdates = append(exdates, t)
		}
	}
	rids := make([]time.Time, len(overrides))
	for i, o := range overrides {
		if rids[i], _, _, err = readTime(o.Props.Get(ical.PropRecurrenceID)); err != nil {
			return out, fmt.Errorf("ews: RECURRENCE-ID: %w", err)
		}
	}
	wanted = append(append(wanted, exdates...), rids...)
	index := instanceIndexes(rule, wanted)
	for _, t := range exdates {
		if i, ok := index[t.Unix()]; ok {
			out.deleted = append(out.deleted, i)
		} else {
			out.unmatched++
		}
	}
	for n, o := range overrides {
		i, ok := index[rids[n].Unix()]
		if !ok {
			out.unmatched++
			continue
		}
		ci, err := overrideItem(o)
		if err != nil {
			return out, err
		}
		out.modified = append(out.modified, occurrenceEdit{index: i, item: *ci, files: componentFiles(o)})
	}
	return out, nil
}

// instanceIndexes maps those of times that are instances of rule to
// their 1-based index, expanding the rule no further than the last of
// them (and at most maxSeriesIndex instances).
func instanceIndexes(rule *rrule.RRule, times []time.Time) map[int64]int {
	out := map[int64]int{}
	if len(times) == 0 {
		return out
	}
	want := map[int64]bool{}
	last := times[0]
	for _, t := range times {
		want[t.Unix()] = true
		if t.After(last) {
			last = t
		}
	}
	next := rule.Iterator()
	for i := 1; i <= maxSeriesIndex; i++ {
		t, ok := next()
		if !ok || t.After(last) {
			break
		}
		if want[t.Unix()] {
			out[t.Unix()] = i
		}
	}
	return out
}

// overrideItem is the occurrence an overriding VEVENT describes: its
// start, end and descriptive properties.
func overrideItem(o *ical.Component) (*CalendarItem, error) {
	s, _, allDay, err := readTime(o.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		return nil, fmt.Errorf("ews: override DTSTART: %w", err)
	}
	e, err := endOf(o, s, allDay)
	if err != nil {
		return nil, err
	}
	ci := &CalendarItem{Start: &s, End: &e}
	readProps(o, ci)
	return ci, nil
}

// pushSeries writes the exceptions of a series that was just created
// or updated in Exchange as master (its ItemId): deleted occurrences
// first, then modified ones, so that the indexes mean the series as
// created. It returns the series' ItemId with the ChangeKey after the
// last write (a series and its occurrences share one ChangeKey), the
// one the link keeps so that the sync's own write is not synced back,
// or with none when the last write was a deletion (DeleteItem returns
// no ChangeKey: the caller reads it once all writes are done), and the
// ItemIds of the modified occurrences by instance index, for their
// attachments.
func (w *worker) pushSeries(ctx context.Context, master ItemID, edits seriesEdits) (ItemID, map[int]ItemID, error) {
	occ := map[int]ItemID{}
	if edits.empty() {
		return master, occ, nil
	}
	id := master
	for _, i := range edits.deleted {
		if err := w.p.mb.DeleteOccurrence(ctx, master.ID, i); err != nil {
			return master, occ, fmt.Errorf("delete occurrence %d: %w", i, err)
		}
		id.ChangeKey = ""
	}
	for _, e := range edits.modified {
		got, err := w.p.mb.UpdateOccurrence(ctx, master.ID, e.index, e.item)
		var ee *Error
		if errors.As(err, &ee) && ee.Code == "ErrorCalendarOccurrenceIsDeletedFromRecurrence" {
			continue // an EXDATE and an override of one instance: deleted
		}
		if err != nil {
			return master, occ, fmt.Errorf("update occurrence %d: %w", e.index, err)
		}
		id.ChangeKey = got.ChangeKey
		occ[e.index] = got
	}
	return id, occ, nil
}
