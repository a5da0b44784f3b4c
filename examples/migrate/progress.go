package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/report"
)

// Redraw and report periods of the progress display.
const (
	// barRefresh: bars are redrawn at most five times a second.
	barRefresh = 200 * time.Millisecond
	// lineEvery: without a terminal, one progress line this often.
	lineEvery = 10 * time.Second
)

// tracker keeps a run's progress: the mailboxes being copied and the
// totals of those that have ended. Its methods are safe for concurrent
// use; Progress and Mailbox are called from the run's workers.
type tracker struct {
	now func() time.Time

	mu      sync.Mutex
	start   time.Time
	runID   int64
	total   int // mailboxes in the run
	started int // mailboxes whose pass has started
	ended   int
	errors  int
	active  map[string]*mailboxProgress
	// done* add up what mailboxes that have ended copied.
	doneMsgs, doneBytes int64
}

// mailboxProgress is one mailbox being copied.
type mailboxProgress struct {
	target  string
	started time.Time
	p       migration.Progress
}

func newTracker(now func() time.Time) *tracker {
	return &tracker{now: now, start: now(), active: map[string]*mailboxProgress{}}
}

// Start is RunSpec.OnStart.
func (t *tracker) Start(r migration.Run) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.runID, t.total, t.start = r.ID, r.Mailboxes, t.now()
}

// Progress is the run's ProgressFunc.
func (t *tracker) Progress(p migration.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if mp := t.active[p.Target]; mp != nil {
		mp.p = p
	}
}

// Mailbox is RunSpec.OnMailbox. It returns true when the mailbox's pass
// has ended (and its line should be shown).
func (t *tracker) Mailbox(rm migration.RunMailbox) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rm.Status == migration.RunMailboxRunning {
		if t.active[rm.Target] == nil {
			t.active[rm.Target] = &mailboxProgress{target: rm.Target, started: t.now()}
			t.started++
		}
		return false
	}
	if mp := t.active[rm.Target]; mp != nil {
		t.doneMsgs += mp.p.DoneMessages
		t.doneBytes += mp.p.DoneBytes
		delete(t.active, rm.Target)
	} else {
		// Ended without starting (cut over, or not reached).
		t.started++
	}
	t.ended++
	if rm.Status == migration.RunMailboxError {
		t.errors++
	}
	return true
}

// rates are the numbers one progress line or bar shows.
type rates struct {
	doneMsgs, totalMsgs   int64
	doneBytes, totalBytes int64
	msgsPerSec, bytesPerS float64
	// eta is the estimated time left; negative if unknown.
	eta time.Duration
}

func (r rates) String() string {
	eta := "ETA --"
	if r.eta >= 0 {
		eta = "ETA " + r.eta.Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d msgs, %s/%s, %.0f msg/s, %s/s, %s",
		r.doneMsgs, r.totalMsgs, report.FormatBytes(r.doneBytes), report.FormatBytes(r.totalBytes),
		r.msgsPerSec, report.FormatBytes(int64(r.bytesPerS)), eta)
}

// measure computes rates over elapsed, estimating the time left from the
// byte rate (the message rate for a folder of empty messages).
func measure(doneMsgs, totalMsgs, doneBytes, totalBytes int64, elapsed time.Duration) rates {
	r := rates{doneMsgs: doneMsgs, totalMsgs: totalMsgs, doneBytes: doneBytes, totalBytes: totalBytes, eta: -1}
	if elapsed <= 0 {
		return r
	}
	secs := elapsed.Seconds()
	r.msgsPerSec = float64(doneMsgs) / secs
	r.bytesPerS = float64(doneBytes) / secs
	switch {
	case totalBytes > 0 && r.bytesPerS > 0:
		r.eta = time.Duration(float64(max(totalBytes-doneBytes, 0)) / r.bytesPerS * float64(time.Second))
	case totalMsgs > 0 && r.msgsPerSec > 0:
		r.eta = time.Duration(float64(max(totalMsgs-doneMsgs, 0)) / r.msgsPerSec * float64(time.Second))
	}
	return r
}

// overall returns the whole run's rates and the mailbox counts. Mailboxes
// not started yet are estimated at the average size of those started.
func (t *tracker) overall() (r rates, ended, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	doneMsgs, doneBytes := t.doneMsgs, t.doneBytes
	totalMsgs, totalBytes := t.doneMsgs, t.doneBytes
	for _, mp := range t.active {
		doneMsgs += mp.p.DoneMessages
		doneBytes += mp.p.DoneBytes
		totalMsgs += max(mp.p.TotalMessages, mp.p.DoneMessages)
		totalBytes += max(mp.p.TotalBytes, mp.p.DoneBytes)
	}
	if t.started > 0 && t.total > t.started {
		totalMsgs = totalMsgs * int64(t.total) / int64(t.started)
		totalBytes = totalBytes * int64(t.total) / int64(t.started)
	}
	r = measure(doneMsgs, totalMsgs, doneBytes, totalBytes, t.now().Sub(t.start))
	if t.started == 0 {
		r.eta = -1
	}
	return r, t.ended, t.total
}

// mailboxes returns the rates of the mailboxes being copied, by address.
func (t *tracker) mailboxes() []mailboxRates {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	out := make([]mailboxRates, 0, len(t.active))
	for _, mp := range t.active {
		p := mp.p
		out = append(out, mailboxRates{
			target: mp.target, folder: p.Folder,
			rates: measure(p.DoneMessages, p.TotalMessages, p.DoneBytes, p.TotalBytes, now.Sub(mp.started)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].target < out[j].target })
	return out
}

type mailboxRates struct {
	target, folder string
	rates
}

// overallLine is the one-line summary of the run so far.
func (t *tracker) overallLine() string {
	r, ended, total := t.overall()
	return fmt.Sprintf("%d/%d mailboxes, %s", ended, total, r)
}

// mailboxLine is the line shown when a mailbox's pass ends.
func mailboxLine(rm migration.RunMailbox) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", rm.Target, rm.Status)
	if rm.KeptSettings {
		b.WriteString(" (kept the collector's settings")
		if len(rm.IgnoredSettings) > 0 {
			fmt.Fprintf(&b, "; the %s given differ%s from the stored ones and were not used: rerun with --force-update to use them",
				strings.Join(rm.IgnoredSettings, ", "), pluralS(len(rm.IgnoredSettings) == 1))
		}
		b.WriteString(")")
	}
	if rm.Message != "" {
		b.WriteString(": " + oneLine(rm.Message))
	}
	if rm.Error != "" {
		fmt.Fprintf(&b, ": %s: %s", rm.Class, oneLine(rm.Error))
	}
	return b.String()
}

// display shows a tracker's progress until stopped.
type display interface {
	// mailboxEnded shows the line of a mailbox whose pass has ended.
	mailboxEnded(rm migration.RunMailbox)
	// stop ends the display after a last update.
	stop()
}

// lineDisplay prints one progress line per period and one line per
// mailbox that ends: for logs and pipes.
type lineDisplay struct {
	t    *tracker
	mu   sync.Mutex
	out  io.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

func newLineDisplay(t *tracker, out io.Writer, every time.Duration) *lineDisplay {
	d := &lineDisplay{t: t, out: out, done: make(chan struct{})}
	d.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-d.done:
				return
			case <-tick.C:
				d.println("progress: " + t.overallLine())
			}
		}
	})
	return d
}

func (d *lineDisplay) println(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.out, s)
}

func (d *lineDisplay) mailboxEnded(rm migration.RunMailbox) {
	_, ended, total := d.t.overall()
	d.println(fmt.Sprintf("[%d/%d] %s", ended, total, mailboxLine(rm)))
}

func (d *lineDisplay) stop() {
	close(d.done)
	d.wg.Wait()
	if _, _, total := d.t.overall(); total > 0 {
		d.println("progress: " + d.t.overallLine())
	}
}

// barDisplay draws an overall bar and one bar per mailbox being copied
// (mpb redraws in place with ANSI sequences); lines of mailboxes that end
// are printed above the bars.
type barDisplay struct {
	t    *tracker
	p    *mpb.Progress
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	overall *mpb.Bar
	bars    map[string]*textBar
}

// textBar is a bar with the text its decorator shows.
type textBar struct {
	bar  *mpb.Bar
	mu   sync.Mutex
	text string
}

func (b *textBar) set(s string) {
	b.mu.Lock()
	b.text = s
	b.mu.Unlock()
}

func (b *textBar) get(decor.Statistics) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text
}

func newBarDisplay(t *tracker, out io.Writer) *barDisplay {
	d := &barDisplay{
		t: t,
		p: mpb.New(mpb.WithOutput(out), mpb.WithRefreshRate(barRefresh), mpb.WithWidth(100),
			// Only used on a terminal; forced so the bars also draw into a test buffer.
			mpb.WithAutoRefresh()),
		done: make(chan struct{}),
		bars: map[string]*textBar{},
	}
	overall := &textBar{}
	overall.bar = d.p.New(0, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name("all mailboxes ", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(overall.get)))
	d.overall = overall.bar
	d.bars[""] = overall
	d.wg.Go(func() {
		tick := time.NewTicker(barRefresh)
		defer tick.Stop()
		for {
			select {
			case <-d.done:
				return
			case <-tick.C:
				d.update()
			}
		}
	})
	return d
}

// update moves the bars to the tracker's numbers.
func (d *barDisplay) update() {
	r, ended, total := d.t.overall()
	d.mu.Lock()
	defer d.mu.Unlock()
	ov := d.bars[""]
	ov.set(fmt.Sprintf("%d/%d mailboxes, %s", ended, total, r))
	ov.bar.SetTotal(max(r.totalBytes, 1), false)
	ov.bar.SetCurrent(r.doneBytes)
	seen := map[string]bool{"": true}
	for _, mr := range d.t.mailboxes() {
		seen[mr.target] = true
		b := d.bars[mr.target]
		if b == nil {
			b = &textBar{}
			b.bar = d.p.New(0, mpb.BarStyle(),
				mpb.PrependDecorators(decor.Name(mr.target+" ", decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.Any(b.get)),
				mpb.BarRemoveOnComplete())
			d.bars[mr.target] = b
		}
		text := mr.rates.String()
		if mr.folder != "" {
			text += " [" + printable(mr.folder) + "]"
		}
		b.set(text)
		b.bar.SetTotal(max(mr.totalBytes, 1), false)
		b.bar.SetCurrent(mr.doneBytes)
	}
	for target, b := range d.bars {
		if !seen[target] {
			// Ended: complete (and so remove) the bar.
			b.bar.SetTotal(-1, true)
			delete(d.bars, target)
		}
	}
}

func (d *barDisplay) mailboxEnded(rm migration.RunMailbox) {
	fmt.Fprintln(d.p, mailboxLine(rm))
}

func (d *barDisplay) stop() {
	close(d.done)
	d.wg.Wait()
	d.update()
	d.mu.Lock()
	for target, b := range d.bars {
		if target == "" {
			b.bar.SetTotal(-1, true)
		} else {
			b.bar.Abort(true)
		}
	}
	d.mu.Unlock()
	d.p.Wait()
}

// pluralS is "s" for a verb whose subject is singular ("differs").
func pluralS(singular bool) string {
	if singular {
		return "s"
	}
	return ""
}
