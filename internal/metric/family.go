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
