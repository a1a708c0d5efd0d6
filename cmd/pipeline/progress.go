package main

// This file shows the jobs `pipeline ingest` watches: a redrawn bar per job on a terminal,
// plain throttled lines when the output is a file or a pipe (logs, CI), or one JSON object per
// watch event. It also maps the jobs' final states to the command's exit code.

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// progress receives the snapshots of watched jobs. Implementations are safe for concurrent use:
// every job is watched by its own goroutine.
type progress interface {
	// Update records a snapshot of a job from its watch.
	Update(job *pipelinev1.Job)
	// Tick is called every progressTick, so that rates, ETAs and changes held back by throttling
	// are shown even when no new snapshot arrives.
	Tick()
	// Finish is called once, after every watch has ended.
	Finish()
}

const (
	// progressTick is how often Tick is called.
	progressTick = 250 * time.Millisecond
	// lineEvery is the least time between two plain lines about one job.
	lineEvery = time.Second
	// ttyRedrawEvery is the least time between two redraws caused by snapshots.
	ttyRedrawEvery = 100 * time.Millisecond
	// ttyMaxRows is how many jobs get a line each on a terminal; with more, one line sums them.
	ttyMaxRows = 10
)

// newProgress picks the display for w: JSON when asked, a redrawn bar when w is a terminal,
// plain lines otherwise. jobIDs fixes the order of the jobs on screen.
func newProgress(w io.Writer, output string, jobIDs []string) progress {
	if output == "json" {
		return &jsonProgress{w: w}
	}
	if fd, ok := terminalFd(w); ok {
		width, _, err := term.GetSize(fd)
		if err != nil {
			width = 0
		}
		return newTTYProgress(w, time.Now, jobIDs, width)
	}
	return newLineProgress(w, time.Now, jobIDs, lineEvery)
}

// terminalFd returns the file descriptor of w when w is a terminal.
func terminalFd(w io.Writer) (int, bool) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// --- per-job bookkeeping shared by the displays

// jobTrack is the latest snapshot of one job and what is needed to estimate its rate.
type jobTrack struct {
	job *pipelinev1.Job
	// The rate counts from the first snapshot seen IN_PROGRESS, so time spent waiting for a
	// worker does not lower it.
	baseSet  bool
	baseAt   time.Time
	baseDone int64
}

// observe records job unless it is older than what is known (a watch that reconnects starts
// again with the current snapshot, which may repeat the last one). It reports whether job was new.
func (t *jobTrack) observe(job *pipelinev1.Job, now time.Time) bool {
	if t.job != nil && job.GetVersion() <= t.job.GetVersion() {
		return false
	}
	t.job = job
	if !t.baseSet && job.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS {
		t.baseSet, t.baseAt, t.baseDone = true, now, jobDone(job)
	}
	return true
}

// rate returns documents finished per second since work started, when it can be told yet.
func (t *jobTrack) rate(now time.Time) (float64, bool) {
	if !t.baseSet || t.job == nil {
		return 0, false
	}
	elapsed := now.Sub(t.baseAt).Seconds()
	n := jobDone(t.job) - t.baseDone
	if elapsed < 1 || n <= 0 {
		return 0, false
	}
	return float64(n) / elapsed, true
}

// jobDone is how many documents of the job are finished, successfully or not.
func jobDone(j *pipelinev1.Job) int64 {
	return j.GetProcessing().GetProcessedCount() + j.GetProcessing().GetErrorCount()
}

func jobTerminal(j *pipelinev1.Job) bool {
	switch j.GetStatus() {
	case pipelinev1.JobStatus_JOB_STATUS_COMPLETED, pipelinev1.JobStatus_JOB_STATUS_FAILED, pipelinev1.JobStatus_JOB_STATUS_CANCELLED:
		return true
	}
	return false
}

// statusName is the job status without its enum prefix: PENDING, IN_PROGRESS, COMPLETED, ...
func statusName(s pipelinev1.JobStatus) string {
	return strings.TrimPrefix(s.String(), "JOB_STATUS_")
}

// rateAndETA formats a rate and the time left for remaining documents, or "" when unknown.
func rateAndETA(rate float64, ok bool, remaining int64) string {
	if !ok {
		return ""
	}
	eta := time.Duration(float64(remaining) / rate * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%.1f docs/s, ETA %s", rate, eta)
}

// roundDuration shows a duration to a precision that suits its size: 42ms, 1.3s, 2m5s.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// --- plain lines

// lineProgress writes one line per job when the job changes, at most one a second per job,
// and always the line that shows the job's final status.
type lineProgress struct {
	w     io.Writer
	now   func() time.Time
	every time.Duration

	mu     sync.Mutex
	order  []string
	tracks map[string]*lineTrack
}

type lineTrack struct {
	jobTrack
	shownKey string    // what the last printed line showed; "" before the first
	shownAt  time.Time // when it was printed
	final    bool      // the terminal line is out; nothing more is printed
}

func newLineProgress(w io.Writer, now func() time.Time, jobIDs []string, every time.Duration) *lineProgress {
	p := &lineProgress{w: w, now: now, every: every, tracks: map[string]*lineTrack{}}
	for _, id := range jobIDs {
		p.track(id)
	}
	return p
}

func (p *lineProgress) track(id string) *lineTrack {
	t, ok := p.tracks[id]
	if !ok {
		t = &lineTrack{}
		p.tracks[id] = t
		p.order = append(p.order, id)
	}
	return t
}

func (p *lineProgress) Update(job *pipelinev1.Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.track(job.GetJobId())
	now := p.now()
	if t.final || !t.observe(job, now) {
		return
	}
	p.maybePrint(t, now, false)
}

func (p *lineProgress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, id := range p.order {
		p.maybePrint(p.tracks[id], now, false)
	}
}

// Finish prints the last state of jobs that did not end (the wait was interrupted) when it was
// held back by throttling.
func (p *lineProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, id := range p.order {
		p.maybePrint(p.tracks[id], now, true)
	}
}

// changeKey is what a line shows that matters: a new line is printed only when it changes.
func changeKey(j *pipelinev1.Job) string {
	d := j.GetProcessing()
	return fmt.Sprintf("%s %d %d %d", j.GetStatus(), d.GetDocumentCount(), d.GetProcessedCount(), d.GetErrorCount())
}

func (p *lineProgress) maybePrint(t *lineTrack, now time.Time, force bool) {
	if t.job == nil || t.final {
		return
	}
	if jobTerminal(t.job) {
		t.final = true
		fmt.Fprintln(p.w, finalLine(t.job))
		return
	}
	key := changeKey(t.job)
	if key == t.shownKey {
		return
	}
	if !force && t.shownKey != "" && now.Sub(t.shownAt) < p.every {
		return // held back; a later Tick prints it
	}
	t.shownKey, t.shownAt = key, now
	fmt.Fprintln(p.w, activeLine(t.job, &t.jobTrack, now))
}

// activeLine describes a job that is still PENDING or IN_PROGRESS.
func activeLine(j *pipelinev1.Job, t *jobTrack, now time.Time) string {
	d := j.GetProcessing()
	s := fmt.Sprintf("job %s %s: %d/%d processed, %s", j.GetJobId(), statusName(j.GetStatus()),
		d.GetProcessedCount(), d.GetDocumentCount(), plural(d.GetErrorCount(), "error", "errors"))
	r, ok := t.rate(now)
	if re := rateAndETA(r, ok, d.GetDocumentCount()-jobDone(j)); re != "" {
		s += ", " + re
	}
	return s
}

// finalLine describes a job in a terminal status.
func finalLine(j *pipelinev1.Job) string {
	d := j.GetProcessing()
	s := fmt.Sprintf("job %s %s: %d/%d processed, %s, %s", j.GetJobId(), statusName(j.GetStatus()),
		d.GetProcessedCount(), d.GetDocumentCount(), plural(d.GetErrorCount(), "error", "errors"),
		plural(d.GetChunkCount(), "chunk", "chunks"))
	if j.GetStartTime() != nil && j.GetFinishTime() != nil {
		s += ", in " + roundDuration(j.GetFinishTime().AsTime().Sub(j.GetStartTime().AsTime()))
	}
	if e := j.GetError(); e != "" {
		s += ": " + e
	}
	return s
}

// --- terminal

// ttyProgress keeps one line per job (or one line for all when there are many) and redraws
// them in place.
type ttyProgress struct {
	w     io.Writer
	now   func() time.Time
	width int // terminal columns; 0 when unknown

	mu       sync.Mutex
	order    []string
	tracks   map[string]*jobTrack
	drawn    int // lines drawn last time, to move back over
	drawnAt  time.Time
	shown    []string // the rows on screen
	finished bool
}

func newTTYProgress(w io.Writer, now func() time.Time, jobIDs []string, width int) *ttyProgress {
	p := &ttyProgress{w: w, now: now, width: width, tracks: map[string]*jobTrack{}}
	for _, id := range jobIDs {
		p.track(id)
	}
	return p
}

func (p *ttyProgress) track(id string) *jobTrack {
	t, ok := p.tracks[id]
	if !ok {
		t = &jobTrack{}
		p.tracks[id] = t
		p.order = append(p.order, id)
	}
	return t
}

func (p *ttyProgress) Update(job *pipelinev1.Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.track(job.GetJobId()).observe(job, now) {
		return
	}
	if jobTerminal(job) || now.Sub(p.drawnAt) >= ttyRedrawEvery {
		p.redraw(now)
	}
}

func (p *ttyProgress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redraw(p.now())
}

func (p *ttyProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redraw(p.now())
	p.finished = true
}

func (p *ttyProgress) redraw(now time.Time) {
	if p.finished {
		return
	}
	rows := p.rows(now)
	if slices.Equal(rows, p.shown) {
		return // an idle Tick: nothing would change on screen
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the first line drawn
	}
	for _, r := range rows {
		if p.width > 1 && len(r) >= p.width {
			r = r[:p.width-1] // a wrapped line would break the cursor arithmetic
		}
		b.WriteString("\r\x1b[2K")
		b.WriteString(r)
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(p.w, b.String())
	p.drawn, p.drawnAt, p.shown = len(rows), now, rows
}

func (p *ttyProgress) rows(now time.Time) []string {
	if len(p.order) > ttyMaxRows {
		return []string{p.sumRow(now)}
	}
	rows := make([]string, 0, len(p.order))
	for _, id := range p.order {
		t := p.tracks[id]
		if t.job == nil {
			rows = append(rows, fmt.Sprintf("%-8s waiting for the first update", shortID(id)))
			continue
		}
		d := t.job.GetProcessing()
		r, ok := t.rate(now)
		rows = append(rows, barRow(shortID(id), d.GetProcessedCount(), d.GetErrorCount(), d.GetDocumentCount(),
			rateOrStatus(t.job, r, ok)))
	}
	return rows
}

// sumRow is one line over all jobs, for when there are too many for a line each.
func (p *ttyProgress) sumRow(now time.Time) string {
	var processed, errs, total, ended int64
	var rate float64
	var rateKnown bool
	for _, id := range p.order {
		t := p.tracks[id]
		if t.job == nil {
			continue
		}
		d := t.job.GetProcessing()
		processed, errs, total = processed+d.GetProcessedCount(), errs+d.GetErrorCount(), total+d.GetDocumentCount()
		if jobTerminal(t.job) {
			ended++
		} else if r, ok := t.rate(now); ok {
			rate, rateKnown = rate+r, true
		}
	}
	tail := fmt.Sprintf("%d/%d jobs ended", ended, len(p.order))
	if re := rateAndETA(rate, rateKnown, total-processed-errs); re != "" && ended < int64(len(p.order)) {
		tail = re + "  " + tail
	}
	return barRow("all", processed, errs, total, tail)
}

func barRow(label string, processed, errs, total int64, tail string) string {
	const width = 20
	filled := 0
	if total > 0 {
		filled = int((processed + errs) * width / total)
	}
	filled = min(max(filled, 0), width)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	return fmt.Sprintf("%-8s [%s] %d/%d  %s  %s", label, bar, processed, total, plural(errs, "err", "errs"), tail)
}

// rateOrStatus is the end of a job's bar line: rate and ETA while it runs, else its status.
func rateOrStatus(j *pipelinev1.Job, rate float64, ok bool) string {
	if j.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS {
		if re := rateAndETA(rate, ok, j.GetProcessing().GetDocumentCount()-jobDone(j)); re != "" {
			return re
		}
	}
	return statusName(j.GetStatus())
}

// shortID labels a job on a terminal row. Job ids are UUIDv7, whose first characters are a
// timestamp shared by jobs created together, so the label is the random end of the id; the full
// ids are printed above the rows.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// --- JSON

// jsonProgress writes every snapshot as a WatchJobResponse in protojson (proto field names),
// one object per line.
type jsonProgress struct {
	w  io.Writer
	mu sync.Mutex
}

func (p *jsonProgress) Update(job *pipelinev1.Job) {
	b, err := protoJSON.Marshal(&pipelinev1.WatchJobResponse{Job: job})
	if err != nil {
		return // a message the stubs just decoded always encodes
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(append(b, '\n'))
}

func (*jsonProgress) Tick()   {}
func (*jsonProgress) Finish() {}

// protoJSON is how client commands print messages: proto field names, one line per message.
var protoJSON = protojson.MarshalOptions{UseProtoNames: true}

// --- exit code

// jobsExitCode maps the final snapshots of the watched jobs to the exit code of ingest: 4 when a
// job failed or was cancelled, else 3 when a document failed, else 0 when every job completed.
// A job that is not terminal (the wait was cut short) gives 1.
func jobsExitCode(jobs []*pipelinev1.Job) int {
	code := exitOK
	for _, j := range jobs {
		switch {
		case j.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_FAILED, j.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_CANCELLED:
			return exitJobsNotDone
		case !jobTerminal(j):
			code = exitError
		case j.GetProcessing().GetErrorCount() > 0 && code == exitOK:
			code = exitDocErrors
		}
	}
	return code
}
