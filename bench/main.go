// Command bench measures the project against its peers on this machine, in one run, and checks
// that what it measured is correct: each case runs the project and the peers in alternation
// (a warm-up, then at least five measured runs each; -short: three, on a smaller input, by the
// same code), prints a table case | project | peer | ratio with medians and ranges, and writes
// the same as JSON with -json. Timings are never asserted; a failed correctness check (lost
// text, a chunk over the limit, a run that does not reproduce the checked output) makes it exit
// non-zero. See docs/performance.md.
//
// It is a module of its own (bench/go.mod) so that the peers' libraries stay out of the
// service's dependencies. Run it from this directory: go run . [-short] [-cases chunker] [-json out.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"
)

// Options are the command line's settings.
type Options struct {
	Short   bool
	Runs    int
	Cases   string
	JSON    string
	PGDoc   string
	JSDir   string
	List    bool
	Verbose bool
	CPUProf string
	// BlockProf names a file for a profile of where goroutines waited (blocking and mutex
	// contention together), written at the end of the run.
	BlockProf string
	// MutexProf names a file for a profile of mutex contention (who held a lock others waited
	// for), written at the end of the run.
	MutexProf string
	// Trace names a file for an execution trace of the whole run (go tool trace).
	Trace string
	// MemProf names a file for a profile of the allocations made during the run.
	MemProf string
	// Subjects, when set, keeps only the subjects whose names match it (a regular expression),
	// and the comparisons between two kept subjects: for a quick look at one side.
	Subjects string
}

var registry []*Case

// register adds a case; each case's file calls it from init.
func register(c *Case) { registry = append(registry, c) }

func main() {
	var o Options
	flag.BoolVar(&o.Short, "short", false, "smaller input and 3 runs per subject (CI), same code path")
	flag.IntVar(&o.Runs, "runs", 0, "measured runs per subject (default 7, -short 3)")
	flag.StringVar(&o.Cases, "cases", "", "comma-separated cases to run (default all; see -list)")
	flag.StringVar(&o.JSON, "json", "", "write the results as JSON to this file")
	flag.StringVar(&o.PGDoc, "pgdoc", pgDocDir, "postgresql-doc-15 HTML directory")
	flag.StringVar(&o.JSDir, "js", "js", "directory of the JavaScript peers (package.json, node_modules)")
	flag.BoolVar(&o.List, "list", false, "list the cases and exit")
	flag.BoolVar(&o.Verbose, "v", false, "report progress")
	flag.StringVar(&o.CPUProf, "cpuprofile", "", "write a CPU profile of the whole run (go tool pprof) to this file")
	flag.StringVar(&o.BlockProf, "blockprofile", "", "write a profile of where goroutines waited (channels, locks, select) to this file")
	flag.StringVar(&o.MutexProf, "mutexprofile", "", "write a profile of mutex contention (where a lock others waited for was released) to this file")
	flag.StringVar(&o.MemProf, "memprofile", "", "write a profile of the allocations of the whole run (go tool pprof -sample_index=alloc_space) to this file")
	flag.StringVar(&o.Trace, "trace", "", "write an execution trace of the whole run (go tool trace) to this file")
	flag.StringVar(&o.Subjects, "subjects", "", "run only the subjects whose names match this regular expression (e.g. 'project|River')")
	flag.Parse()
	if o.List {
		for _, c := range registry {
			fmt.Printf("%-10s %s\n", c.Name, c.About)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	startTo("-cpuprofile", o.CPUProf, pprof.StartCPUProfile)
	if o.BlockProf != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	if o.MutexProf != "" {
		runtime.SetMutexProfileFraction(1)
	}
	startTo("-trace", o.Trace, trace.Start)
	rep, err := run(ctx, o)
	pprof.StopCPUProfile()
	trace.Stop()
	if o.MemProf != "" {
		if werr := writeProfile("allocs", o.MemProf); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if o.MutexProf != "" {
		if werr := writeProfile("mutex", o.MutexProf); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if o.BlockProf != "" {
		if werr := writeProfile("block", o.BlockProf); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if rep != nil {
		printReport(os.Stdout, rep)
		if o.JSON != "" {
			if werr := writeJSON(o.JSON, rep); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) (*Report, error) {
	if o.Runs == 0 {
		o.Runs = 7
		if o.Short {
			o.Runs = 3
		}
	}
	if o.Runs < 1 {
		return nil, fmt.Errorf("-runs must be at least 1")
	}
	selected := registry
	if o.Cases != "" {
		selected = nil
		for name := range strings.SplitSeq(o.Cases, ",") {
			i := slices.IndexFunc(registry, func(c *Case) bool { return c.Name == strings.TrimSpace(name) })
			if i < 0 {
				return nil, fmt.Errorf("-cases: unknown case %q (see -list)", name)
			}
			selected = append(selected, registry[i])
		}
	}
	logf := func(format string, args ...any) {
		if o.Verbose {
			fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
		}
	}
	rep := &Report{Started: time.Now(), Short: o.Short, Host: Host{
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Node: nodeVersion(), LoadBefore: loadAvg(),
	}}
	var errs []error
	for _, c := range selected {
		t0 := time.Now()
		cr, err := runCase(ctx, c, o, logf)
		if cr == nil {
			cr = &CaseResult{Name: c.Name, About: c.About, spec: c}
		}
		cr.Elapsed = time.Since(t0)
		if err != nil {
			cr.Error = err.Error()
			cr.Failed = errors.Is(err, ErrCorrectness)
			errs = append(errs, err)
		}
		rep.Cases = append(rep.Cases, cr)
	}
	rep.Host.LoadAfter = loadAvg()
	rep.Duration = time.Since(rep.Started)
	rep.Failed = len(errs) > 0
	return rep, errors.Join(errs...)
}

func runCase(ctx context.Context, c *Case, o Options, logf func(string, ...any)) (*CaseResult, error) {
	dir, err := os.MkdirTemp("", "bench-"+c.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env := &Env{Short: o.Short, Runs: o.Runs, Dir: dir, Logf: logf, Options: o}
	p, err := c.Prepare(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if p.Close != nil {
		defer p.Close()
	}
	if o.Subjects != "" {
		if err := p.keep(o.Subjects); err != nil {
			return nil, err
		}
	}
	return measure(ctx, c, p, o.Runs, logf)
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadAvg is the first three fields of /proc/loadavg, or "" where there is none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// startTo starts a recording (a CPU profile, a trace) into the file path, left open until the
// process exits; nothing when path is empty. It exits on failure.
func startTo(flagName, path string, start func(io.Writer) error) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = start(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", flagName, err)
		os.Exit(1)
	}
}

// writeProfile writes the named runtime profile (see runtime/pprof.Lookup) to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
