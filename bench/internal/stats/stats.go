// Package stats holds what the benchmarks share to summarise their samples.
package stats

import (
	"slices"
	"time"
)

// Percentile is the nearest-rank p-th percentile (1-100) of d: with few samples, p99 and p100
// are the slowest one. ok is false when d is empty.
func Percentile(d []time.Duration, p int) (v time.Duration, ok bool) {
	if len(d) == 0 {
		return 0, false
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)], true
}

// Format is Percentile rounded to round, or "-" without samples.
func Format(d []time.Duration, p int, round time.Duration) string {
	v, ok := Percentile(d, p)
	if !ok {
		return "-"
	}
	return v.Round(round).String()
}
