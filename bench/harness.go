package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"time"
)

// A Case is one benchmark: the project and its peers measured on the same input in the same
// process run. Each case lives in its own file and registers itself in an init function, so
// cases (end to end, freshness, dispatch, watch latency, API) are added without touching the
// runner.
type Case struct {
	// Name selects the case with -cases.
	Name string
	// About is one line for -list and the report.
	About string
	// Primary is the metric the summary table compares (e.g. "MB/s").
	Primary Metric
	// Summary, when set, replaces Primary in the summary table with several metrics (e.g. p50
	// and p99), each compared for every pair.
	Summary []Metric
	// Columns are the metrics of the details table, in order: medians of the runs' Metrics
	// (with min-max) or, when a run does not report them, the subject's Quality.
	Columns []Metric
	// Prepare builds the input and the subjects, once per harness run.
	Prepare func(ctx context.Context, env *Env) (*Prepared, error)
}

// Metric names and formats one measured quantity.
type Metric struct {
	Name string
	// Unit follows the value in the report ("" for none).
	Unit string
	// Format is the fmt verb for one value, e.g. "%.1f".
	Format string
	// LowerBetter flips the ratio so that above 1 always means the project is better.
	LowerBetter bool
}

// Env is what a case gets from the harness.
type Env struct {
	Short bool
	Runs  int
	// Dir is a scratch directory of the case's own, removed after the run.
	Dir string
	// Logf reports progress on stderr.
	Logf func(format string, args ...any)
	// Options are the command line's settings that cases may read.
	Options Options
}

// Prepared is a case ready to measure.
type Prepared struct {
	// Input describes what was measured, for the report.
	Input string
	// Subjects are measured in alternation: round r starts with subject r mod len.
	Subjects []*Subject
	// Compare lists the rows of the summary table, project subject first.
	Compare [][2]string
	// Notes are printed under the case's tables (what the limits are, etc.).
	Notes []string
	// Close releases what Prepare started (child processes, files); may be nil.
	Close func()
}

// Subject is one side of a comparison: the project or a peer.
type Subject struct {
	Name    string
	Project bool
	// Run makes one measured run. The first call is a warm-up whose output the case checks in
	// full and turns into Quality; later calls must reproduce it (the case checks that too).
	Run func(ctx context.Context, warmup bool) (Sample, error)
	// Quality holds the figures of the checked output (chunk counts, coverage, ...), filled
	// by the case during the warm-up.
	Quality map[string]float64
}

// Sample is one run's measurements.
type Sample map[string]float64

// ErrCorrectness marks a failed check of what was measured: the harness exits non-zero.
var ErrCorrectness = errors.New("correctness check failed")

func correctness(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrectness, fmt.Sprintf(format, args...))
}

// Stat is the median and range of one metric over the measured runs.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func statOf(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// SubjectResult is one subject's runs and their summary.
type SubjectResult struct {
	Name    string             `json:"name"`
	Project bool               `json:"project"`
	Runs    []Sample           `json:"runs"`
	Stats   map[string]Stat    `json:"stats"`
	Quality map[string]float64 `json:"quality"`
}

// Comparison is one row of the summary table.
type Comparison struct {
	Metric  string  `json:"metric"`
	Project string  `json:"project"`
	Peer    string  `json:"peer"`
	Ours    Stat    `json:"project_stat"`
	Theirs  Stat    `json:"peer_stat"`
	Ratio   float64 `json:"ratio"` // above 1: the project is better
	// LowerBetter says the ratio is peer / project (latencies).
	LowerBetter bool `json:"lower_better,omitempty"`
	spec        Metric
}

// summary is the metrics of the summary table.
func (c *Case) summary() []Metric {
	if len(c.Summary) > 0 {
		return c.Summary
	}
	return []Metric{c.Primary}
}

// CaseResult is one case's outcome.
type CaseResult struct {
	Name        string          `json:"name"`
	About       string          `json:"about"`
	Input       string          `json:"input"`
	Runs        int             `json:"runs"`
	Subjects    []SubjectResult `json:"subjects"`
	Comparisons []Comparison    `json:"comparisons"`
	Notes       []string        `json:"notes,omitempty"`
	Error       string          `json:"error,omitempty"`
	// Failed is set when a correctness check failed (as opposed to the case not running).
	Failed  bool          `json:"failed,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
	spec    *Case
}

// keep drops the subjects whose names do not match the regular expression expr, and the
// comparisons that lose a side.
func (p *Prepared) keep(expr string) error {
	re, err := regexp.Compile(expr)
	if err != nil {
		return fmt.Errorf("-subjects: %w", err)
	}
	p.Subjects = slices.DeleteFunc(p.Subjects, func(s *Subject) bool { return !re.MatchString(s.Name) })
	if len(p.Subjects) == 0 {
		return fmt.Errorf("-subjects: %q matches no subject", expr)
	}
	p.Compare = slices.DeleteFunc(p.Compare, func(c [2]string) bool {
		return !re.MatchString(c[0]) || !re.MatchString(c[1])
	})
	return nil
}

// measure runs a prepared case: one warm-up round, then env.Runs rounds in which every subject
// runs once, the order rotating so that no subject always follows the same one.
func measure(ctx context.Context, c *Case, p *Prepared, runs int, logf func(string, ...any)) (*CaseResult, error) {
	res := &CaseResult{Name: c.Name, About: c.About, Input: p.Input, Runs: runs, Notes: p.Notes, spec: c}
	n := len(p.Subjects)
	samples := make([][]Sample, n)
	for round := -1; round < runs; round++ {
		for k := range n {
			i := k
			if round >= 0 {
				i = (k + round) % n
			}
			sub := p.Subjects[i]
			// Collect the previous subject's garbage now, not on this one's clock.
			runtime.GC()
			s, err := sub.Run(ctx, round < 0)
			if err != nil {
				return res, fmt.Errorf("%s: %s: %w", c.Name, sub.Name, err)
			}
			if round >= 0 {
				samples[i] = append(samples[i], s)
			}
		}
		if round >= 0 {
			logf("%s: round %d/%d done", c.Name, round+1, runs)
		} else {
			logf("%s: warm-up and checks done", c.Name)
		}
	}
	byName := map[string]*SubjectResult{}
	for i, sub := range p.Subjects {
		sr := SubjectResult{Name: sub.Name, Project: sub.Project, Runs: samples[i], Stats: map[string]Stat{}, Quality: sub.Quality}
		keys := map[string]bool{}
		for _, s := range samples[i] {
			for k := range s {
				keys[k] = true
			}
		}
		for k := range keys {
			var xs []float64
			for _, s := range samples[i] {
				if v, ok := s[k]; ok {
					xs = append(xs, v)
				}
			}
			sr.Stats[k] = statOf(xs)
		}
		res.Subjects = append(res.Subjects, sr)
	}
	for i := range res.Subjects {
		byName[res.Subjects[i].Name] = &res.Subjects[i]
	}
	for _, m := range c.summary() {
		for _, pair := range p.Compare {
			ours, theirs := byName[pair[0]], byName[pair[1]]
			if ours == nil || theirs == nil {
				return res, fmt.Errorf("%s: comparison names unknown subject %q or %q", c.Name, pair[0], pair[1])
			}
			cmp := Comparison{Metric: m.Name, Project: pair[0], Peer: pair[1],
				Ours: ours.Stats[m.Name], Theirs: theirs.Stats[m.Name], LowerBetter: m.LowerBetter, spec: m}
			cmp.Ratio = cmp.Ours.Median / cmp.Theirs.Median
			if m.LowerBetter {
				cmp.Ratio = 1 / cmp.Ratio
			}
			res.Comparisons = append(res.Comparisons, cmp)
		}
	}
	return res, nil
}
