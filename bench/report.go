package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Report is the whole run, as written with -json.
type Report struct {
	Started  time.Time     `json:"started"`
	Short    bool          `json:"short"`
	Host     Host          `json:"host"`
	Cases    []*CaseResult `json:"cases"`
	Failed   bool          `json:"failed"`
	Duration time.Duration `json:"duration_ns"`
}

// Host is what the numbers were measured on.
type Host struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	Node       string `json:"node,omitempty"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

func formatStat(m Metric, s Stat) string {
	if math.IsNaN(s.Median) {
		return "-"
	}
	return fmt.Sprintf(m.Format+" ("+m.Format+"-"+m.Format+")", s.Median, s.Min, s.Max)
}

// table prints rows as a Markdown table with aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, b.String())
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

// printReport writes the summary table (case | project | peer | ratio) and each case's details.
func printReport(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "\nbenchmark: %d CPUs, %s, node %s; load before %s, after %s; short=%v; %s\n\n",
		rep.Host.CPUs, rep.Host.GoVersion, orDash(rep.Host.Node), rep.Host.LoadBefore, rep.Host.LoadAfter,
		rep.Short, rep.Duration.Round(time.Second))
	var rows [][]string
	for _, cr := range rep.Cases {
		if cr.spec == nil {
			continue
		}
		for _, c := range cr.Comparisons {
			m := c.spec
			name := m.Name
			if m.LowerBetter {
				name += " (lower is better; ratio = peer/project)"
			}
			rows = append(rows, []string{
				fmt.Sprintf("%s %s: %s vs %s", cr.Name, name, c.Project, c.Peer),
				formatStat(m, c.Ours), formatStat(m, c.Theirs), fmt.Sprintf("%.2f", c.Ratio),
			})
		}
	}
	fmt.Fprintln(w, "median (min-max) of the measured runs; ratio > 1: the project is better")
	table(w, []string{"case", "project", "peer", "ratio"}, rows)
	for _, cr := range rep.Cases {
		fmt.Fprintf(w, "\n## %s: %s\n", cr.Name, cr.About)
		if cr.Error != "" {
			fmt.Fprintf(w, "FAILED: %s\n", cr.Error)
		}
		if cr.spec == nil || len(cr.Subjects) == 0 {
			continue
		}
		fmt.Fprintf(w, "input: %s; %d measured runs each, alternating\n", cr.Input, cr.Runs)
		header := []string{"subject"}
		for _, m := range cr.spec.Columns {
			h := m.Name
			if m.Unit != "" {
				h += " (" + m.Unit + ")"
			}
			header = append(header, h)
		}
		var rows [][]string
		for _, s := range cr.Subjects {
			row := []string{s.Name}
			for _, m := range cr.spec.Columns {
				if st, ok := s.Stats[m.Name]; ok {
					row = append(row, formatStat(m, st))
				} else if v, ok := s.Quality[m.Name]; ok {
					row = append(row, fmt.Sprintf(m.Format, v))
				} else {
					row = append(row, "-")
				}
			}
			rows = append(rows, row)
		}
		table(w, header, rows)
		for _, n := range cr.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
