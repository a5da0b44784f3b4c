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
// it is a gauge (else a counter), its full name, help and label names.
type Decl struct {
	To         *Family
	Gauge      bool
	Name, Help string
	Labels     []string
}

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
		declare := m.Counter
		if d.Gauge {
			declare = m.Gauge
		}
		add, err := declare(d.Name, d.Help, d.Labels...)
		if err != nil {
			return err
		}
		*d.To = add
	}
	return nil
}
