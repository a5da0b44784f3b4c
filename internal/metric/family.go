package metric

// Family is one metric family as a Metrics interface returns it: a call
// adds delta to the series with the given label values, one per label the
// family was declared with. Its methods read like client_golang's, so the
// counting code says what it counts and nothing more.
type Family func(delta float64, labelValues ...string)

// WithLabelValues returns the series with these label values.
func (f Family) WithLabelValues(labelValues ...string) Series {
	return Series{f: f, labels: labelValues}
}

// Inc adds 1 to a family without labels.
func (f Family) Inc() { f(1) }

// Dec subtracts 1 from a gauge without labels.
func (f Family) Dec() { f(-1) }

// Add adds delta to a family without labels.
func (f Family) Add(delta float64) { f(delta) }

// Series is one labelled series of a [Family].
type Series struct {
	f      Family
	labels []string
}

// Inc adds 1 to the series.
func (s Series) Inc() { s.f(1, s.labels...) }

// Add adds delta to the series.
func (s Series) Add(delta float64) { s.f(delta, s.labels...) }

// Discard is the Metrics of a package given none: every family it
// declares records nothing.
type Discard struct{}

func discard(float64, ...string) {}

// Counter declares nothing and returns a function that records nothing.
func (Discard) Counter(string, string, ...string) (func(float64, ...string), error) {
	return discard, nil
}

// Gauge declares nothing and returns a function that records nothing.
func (Discard) Gauge(string, string, ...string) (func(float64, ...string), error) {
	return discard, nil
}

// GaugeFunc declares nothing; collect is never called.
func (Discard) GaugeFunc(string, string, []string, func(emit func(float64, ...string))) error {
	return nil
}

// Decl is one family a package declares: where its function goes, whether
// it is a gauge or a histogram (else a counter), its full name, help and
// label names.
type Decl struct {
	To         *Family
	Gauge      bool
	Name, Help string
	Labels     []string
	// Buckets makes the family a histogram with these upper bounds: its
	// function observes a value (see [Histogrammer]).
	Buckets []float64
	// Series are label values (one slice per series, one value per
	// label) whose series exist from the declaration on, at zero, so
	// that an alert on an absent series works from the start. A family
	// without labels always exists.
	Series [][]string
}

// Histogrammer is the optional part of a package's Metrics that declares
// histograms. The function returned observes one value (a latency in
// seconds) in the series with the given label values; series lists the
// label values whose series must exist, empty, from the start. A Metrics
// without it records no histograms.
type Histogrammer interface {
	Histogram(name, help string, buckets []float64, labels []string, series [][]string) (observe func(value float64, labelValues ...string), err error)
}

// LatencyBuckets are the bounds, in seconds, of the latency histograms
// the packages declare: from 0.5 ms (a cached IMAP read) to 30 s (a
// large upload or a slow DNS answer).
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Declarer is the part of a package's Metrics interface that [Declare]
// uses; smtp.Metrics and imap.Metrics both have it.
type Declarer interface {
	Counter(name, help string, labels ...string) (func(float64, ...string), error)
	Gauge(name, help string, labels ...string) (func(float64, ...string), error)
}

// Declare declares each family with m, [Discard] when m is nil, and
// stores its function where the Decl says; it stops at m's first error.
func Declare(m Declarer, decls ...Decl) error {
	if m == nil {
		m = Discard{}
	}
	for _, d := range decls {
		if d.Buckets != nil {
			h, ok := m.(Histogrammer)
			if !ok {
				*d.To = discard
				continue
			}
			observe, err := h.Histogram(d.Name, d.Help, d.Buckets, d.Labels, d.Series)
			if err != nil {
				return err
			}
			*d.To = observe
			continue
		}
		declare := m.Counter
		if d.Gauge {
			declare = m.Gauge
		}
		add, err := declare(d.Name, d.Help, d.Labels...)
		if err != nil {
			return err
		}
		for _, lv := range d.Series {
			add(0, lv...) // creates the series at zero
		}
		*d.To = add
	}
	return nil
}

// Observe records one value (a histogram's observation) in a family
// without labels.
func (f Family) Observe(v float64) { f(v) }

// Observe records one value in the series.
func (s Series) Observe(v float64) { s.f(v, s.labels...) }

// OneLabel lists the series of a family with one label, one per value,
// for [Decl].Series.
func OneLabel(values ...string) [][]string {
	out := make([][]string, len(values))
	for i, v := range values {
		out[i] = []string{v}
	}
	return out
}
