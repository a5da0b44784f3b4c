package metric

import (
	"fmt"
	"strings"
	"sync"
)

// Recorder keeps every family declared to it in memory, for tests to
// read back with [Recorder.Value]. Like a Prometheus registry it refuses
// a family declared twice and panics on a label count that does not
// match the declaration or on a counter going down.
type Recorder struct {
	mu       sync.Mutex
	families map[string]*recorded
}

type recorded struct {
	counter   bool
	histogram bool // values count observations
	labels    []string
	values    map[string]float64 // by label values joined with "\xff"
	collect   func(emit func(float64, ...string))
}

// Counter declares a counter family.
func (r *Recorder) Counter(name, _ string, labels ...string) (func(float64, ...string), error) {
	return r.declare(name, &recorded{counter: true, labels: labels})
}

// Gauge declares a gauge family.
func (r *Recorder) Gauge(name, _ string, labels ...string) (func(float64, ...string), error) {
	return r.declare(name, &recorded{labels: labels})
}

// Histogram declares a histogram family; [Recorder.Value] of a series
// is its number of observations.
func (r *Recorder) Histogram(name, _ string, _ []float64, labels []string, series [][]string) (func(float64, ...string), error) {
	f := &recorded{histogram: true, labels: labels}
	observe, err := r.declare(name, f)
	if err != nil {
		return nil, err
	}
	for _, lv := range series {
		key := f.key(name, lv)
		r.mu.Lock()
		f.values[key] += 0
		r.mu.Unlock()
	}
	return observe, nil
}

// GaugeFunc declares a gauge family whose series collect reports
// whenever [Recorder.Value] asks for it.
func (r *Recorder) GaugeFunc(name, _ string, labels []string, collect func(emit func(float64, ...string))) error {
	_, err := r.declare(name, &recorded{labels: labels, collect: collect})
	return err
}

func (r *Recorder) declare(name string, f *recorded) (func(float64, ...string), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.families[name]; ok {
		return nil, fmt.Errorf("metric: %s declared twice", name)
	}
	if r.families == nil {
		r.families = map[string]*recorded{}
	}
	f.values = map[string]float64{}
	r.families[name] = f
	return func(delta float64, labelValues ...string) {
		if f.counter && delta < 0 {
			panic(fmt.Sprintf("metric: counter %s decreased by %v", name, delta))
		}
		key := f.key(name, labelValues)
		if f.histogram {
			delta = 1
		}
		r.mu.Lock()
		f.values[key] += delta
		r.mu.Unlock()
	}, nil
}

func (f *recorded) key(name string, labelValues []string) string {
	if len(labelValues) != len(f.labels) {
		panic(fmt.Sprintf("metric: %s has labels %q, got values %q", name, f.labels, labelValues))
	}
	return strings.Join(labelValues, "\xff")
}

// Value returns the value of the series of family name whose labels are
// exactly labels (nil for a family without labels), and whether the
// family has such a series.
func (r *Recorder) Value(name string, labels map[string]string) (float64, bool) {
	r.mu.Lock()
	f := r.families[name]
	r.mu.Unlock()
	if f == nil || len(labels) != len(f.labels) {
		return 0, false
	}
	values := make([]string, len(f.labels))
	for i, l := range f.labels {
		v, ok := labels[l]
		if !ok {
			return 0, false
		}
		values[i] = v
	}
	key := f.key(name, values)
	if f.collect != nil {
		var v float64
		found := false
		f.collect(func(value float64, labelValues ...string) {
			if f.key(name, labelValues) == key {
				v, found = value, true
			}
		})
		return v, found
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := f.values[key]
	return v, ok
}
