package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

const (
	pending    = pipelinev1.JobStatus_JOB_STATUS_PENDING
	inProgress = pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS
	completed  = pipelinev1.JobStatus_JOB_STATUS_COMPLETED
	failed     = pipelinev1.JobStatus_JOB_STATUS_FAILED
	cancelled  = pipelinev1.JobStatus_JOB_STATUS_CANCELLED
)

// snap is a job snapshot for the display tests.
func snap(id string, version int64, st pipelinev1.JobStatus, total, processed, errs int64) *pipelinev1.Job {
	return &pipelinev1.Job{
		JobId: id, Version: version, Status: st,
		Processing: &pipelinev1.ProcessingDetails{DocumentCount: total, ProcessedCount: processed, ErrorCount: errs, ChunkCount: processed * 3},
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func takeLines(b *bytes.Buffer) []string {
	s := strings.TrimSpace(b.String())
	b.Reset()
	return splitNonEmpty(s)
}
func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestLineProgressPrintsChangesAtMostOncePerSecond(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := newFakeClock()
	p := newLineProgress(&out, clock.now, []string{"j1"}, time.Second)

	p.Update(snap("j1", 1, pending, 10, 0, 0))
	require.Equal(t, []string{"job j1 PENDING: 0/10 processed, 0 errors"}, takeLines(&out))

	p.Update(snap("j1", 1, pending, 10, 0, 0)) // a reconnected watch repeats the snapshot
	p.Update(snap("j1", 2, pending, 10, 0, 0)) // a new version that changes nothing shown
	p.Tick()
	require.Empty(t, takeLines(&out), "nothing changed that a line shows")

	clock.advance(200 * time.Millisecond)
	p.Update(snap("j1", 3, inProgress, 10, 0, 0))
	require.Empty(t, takeLines(&out), "held back: less than a second since the last line")
	clock.advance(300 * time.Millisecond)
	p.Update(snap("j1", 4, inProgress, 10, 1, 0))
	p.Tick()
	require.Empty(t, takeLines(&out))

	clock.advance(600 * time.Millisecond) // 1.1s after the first line
	p.Tick()
	require.Equal(t, []string{"job j1 IN_PROGRESS: 1/10 processed, 0 errors"}, takeLines(&out), "the latest state, once")
	p.Tick()
	require.Empty(t, takeLines(&out))

	// Rate and ETA once work has gone on for a while: 4 documents in the 2s since the first
	// IN_PROGRESS snapshot was seen (with 0 done).
	clock.advance(1100 * time.Millisecond)
	p.Update(snap("j1", 5, inProgress, 10, 3, 1))
	require.Equal(t, []string{"job j1 IN_PROGRESS: 3/10 processed, 1 error, 2.0 docs/s, ETA 3s"}, takeLines(&out))

	// The final line comes at once, however soon, and nothing after it.
	clock.advance(10 * time.Millisecond)
	final := snap("j1", 6, completed, 10, 9, 1)
	final.StartTime = timestamppb.New(clock.t.Add(-5 * time.Second))
	final.FinishTime = timestamppb.New(clock.t)
	p.Update(final)
	require.Equal(t, []string{"job j1 COMPLETED: 9/10 processed, 1 error, 27 chunks, in 5s"}, takeLines(&out))
	p.Update(snap("j1", 7, completed, 10, 9, 1))
	p.Tick()
	p.Finish()
	require.Empty(t, takeLines(&out))
}

func TestLineProgressKeepsJobsApart(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := newFakeClock()
	p := newLineProgress(&out, clock.now, []string{"a", "b"}, time.Second)
	p.Update(snap("a", 1, pending, 2, 0, 0))
	p.Update(snap("b", 1, pending, 3, 0, 0))
	require.Len(t, takeLines(&out), 2, "throttling is per job")

	f := snap("b", 2, failed, 3, 0, 0)
	f.Error = "timed out"
	p.Update(f)
	p.Update(snap("a", 2, inProgress, 2, 1, 0))
	require.Equal(t, []string{"job b FAILED: 0/3 processed, 0 errors, 0 chunks: timed out"}, takeLines(&out))

	// Interrupted: Finish shows what was held back.
	p.Finish()
	require.Equal(t, []string{"job a IN_PROGRESS: 1/2 processed, 0 errors"}, takeLines(&out))
}

func TestTTYProgressRedrawsInPlace(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := newFakeClock()
	p := newTTYProgress(&out, clock.now, []string{"j-aaaaaaaa", "j-bbbbbbbb"}, 0)
	p.Update(snap("j-aaaaaaaa", 1, inProgress, 10, 0, 0))
	first := out.String()
	require.Equal(t, 2, strings.Count(first, "\n"), "a line per job")
	require.NotContains(t, first, "\x1b[2A", "nothing to move back over yet")
	require.Contains(t, first, "aaaaaaaa [....................] 0/10  0 errs  IN_PROGRESS")
	require.Contains(t, first, "bbbbbbbb waiting")

	out.Reset()
	clock.advance(2 * time.Second)
	p.Update(snap("j-aaaaaaaa", 2, inProgress, 10, 4, 1))
	redraw := out.String()
	require.True(t, strings.HasPrefix(redraw, "\x1b[2A"), "moves back over both lines: %q", redraw)
	require.Contains(t, redraw, "[##########..........] 4/10  1 err  2.5 docs/s, ETA 2s")

	out.Reset()
	clock.advance(10 * time.Millisecond)
	p.Update(snap("j-aaaaaaaa", 3, inProgress, 10, 5, 1))
	require.Empty(t, out.String(), "redraws are throttled")
	p.Update(snap("j-bbbbbbbb", 1, completed, 1, 1, 0))
	require.Contains(t, out.String(), "5/10", "a terminal snapshot redraws at once, with the held-back change")
	require.Contains(t, out.String(), "bbbbbbbb [####################] 1/1  0 errs  COMPLETED")

	out.Reset()
	p.Tick()
	require.Empty(t, out.String(), "an idle tick draws nothing")
	p.Finish()
	p.Update(snap("j-aaaaaaaa", 4, completed, 10, 9, 1))
	p.Tick()
	require.Empty(t, out.String(), "nothing is drawn after Finish")
}

func TestTTYProgressSumsManyJobs(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var ids []string
	for i := range ttyMaxRows + 1 {
		ids = append(ids, string(rune('a'+i)))
	}
	p := newTTYProgress(&out, newFakeClock().now, ids, 0)
	for _, id := range ids {
		p.Update(snap(id, 1, completed, 2, 2, 0))
	}
	last := out.String()[strings.LastIndex(out.String(), "\x1b[2K")+4:]
	require.Equal(t, "all      [####################] 22/22  0 errs  11/11 jobs ended\n", last)
}

func TestTTYProgressCutsRowsToTheWidth(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newTTYProgress(&out, newFakeClock().now, []string{"a"}, 30)
	p.Update(snap("a", 1, completed, 2, 2, 0))
	require.Equal(t, "\r\x1b[2Ka        ["+strings.Repeat("#", 19)+"\n", out.String(), "29 columns: one short of the width")
}

func TestJSONProgressWritesOneEventPerLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &jsonProgress{w: &out}
	p.Update(snap("j1", 1, pending, 2, 0, 0))
	p.Update(snap("j1", 2, completed, 2, 2, 0))
	p.Tick()
	p.Finish()
	lines := takeLines(&out)
	require.Len(t, lines, 2)
	for _, l := range lines {
		var v map[string]map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		require.Equal(t, "j1", v["job"]["job_id"])
	}
}

func TestJobsExitCode(t *testing.T) {
	t.Parallel()
	ok := snap("a", 9, completed, 5, 5, 0)
	docErrs := snap("b", 9, completed, 5, 3, 2)
	for name, tc := range map[string]struct {
		jobs []*pipelinev1.Job
		want int
	}{
		"all completed":            {[]*pipelinev1.Job{ok, ok}, exitOK},
		"document errors":          {[]*pipelinev1.Job{ok, docErrs}, exitDocErrors},
		"failed":                   {[]*pipelinev1.Job{ok, snap("c", 9, failed, 5, 0, 0)}, exitJobsNotDone},
		"cancelled":                {[]*pipelinev1.Job{snap("c", 9, cancelled, 5, 0, 0)}, exitJobsNotDone},
		"failed beats doc errors":  {[]*pipelinev1.Job{docErrs, snap("c", 9, failed, 5, 0, 0)}, exitJobsNotDone},
		"still running":            {[]*pipelinev1.Job{ok, snap("c", 9, inProgress, 5, 1, 0)}, exitError},
		"running beats doc errors": {[]*pipelinev1.Job{docErrs, snap("c", 9, pending, 5, 0, 0)}, exitError},
		"failed beats running":     {[]*pipelinev1.Job{snap("c", 9, pending, 5, 0, 0), snap("d", 9, failed, 5, 0, 0)}, exitJobsNotDone},
	} {
		require.Equal(t, tc.want, jobsExitCode(tc.jobs), name)
	}
}
