package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// corpus is what was ingested, as the server answered.
type corpus struct {
	mu       sync.Mutex
	docURI   map[string]string // document id -> uri
	badURIs  map[string]bool
	jobIDs   map[string]bool // jobs named in ingest answers
	calls    int             // ingest calls that succeeded
	retries  int             // ingest attempts that failed and were retried
	sources  []string
	finished bool
	err      error
}

// sample is one look at all jobs.
type sample struct {
	at          time.Time
	ok          bool
	progress    int64 // sum of processed + failed documents over all jobs
	jobs        int
	nonTerminal int
}

type monitor struct {
	mu           sync.Mutex
	samples      []sample
	terminalAt   map[string]time.Time // first time each job was seen terminal
	activeJobIDs []string             // non-terminal at the last good sample
}

type faultRec struct {
	Kind    string    `json:"kind"`
	Detail  string    `json:"detail"`
	At      time.Time `json:"at"`
	ReadyAt time.Time `json:"ready_at"`
	// Seconds from the fault to the next increase of the documents done over all jobs.
	NextProgressSec float64 `json:"next_progress_s"`
	// Seconds from the fault until every job active at that moment was terminal.
	ActiveDoneSec float64 `json:"active_jobs_terminal_s"`
	active        []string
}

func (h *harness) exercise(ctx context.Context) (*report, error) {
	rng := rand.New(rand.NewPCG(h.opts.seed, 7))
	c := &corpus{docURI: map[string]string{}, badURIs: map[string]bool{}, jobIDs: map[string]bool{}}
	m := &monitor{terminalAt: map[string]time.Time{}}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.monitorLoop(runCtx, m) }()

	ingestDone := make(chan struct{})
	go func() { defer close(ingestDone); h.ingest(runCtx, c, rng) }()

	faults := h.injectFaults(runCtx, m, rand.New(rand.NewPCG(h.opts.seed, 11)))

	<-ingestDone
	c.mu.Lock()
	ingestErr := c.err
	c.mu.Unlock()
	if ingestErr != nil {
		stopRun()
		wg.Wait()
		return nil, fmt.Errorf("ingest: %w", ingestErr)
	}
	h.logf("ingested %d documents in %d calls (%d retried attempts); waiting for every job to end", len(c.docURI), c.calls, c.retries)

	budget := 20 * time.Minute
	if h.opts.short {
		budget = 4 * time.Minute
	}
	deadline := h.started.Add(budget)
	timedOut := false
	lastLog := time.Now()
	for {
		if ctx.Err() != nil {
			stopRun()
			wg.Wait()
			return nil, ctx.Err()
		}
		m.mu.Lock()
		var last sample
		if n := len(m.samples); n > 0 {
			last = m.samples[n-1]
		}
		m.mu.Unlock()
		if last.ok && last.nonTerminal == 0 && last.jobs >= len(c.jobIDs) && last.at.After(faultsEnd(faults)) && faultsDone(faults) {
			break
		}
		if time.Now().After(deadline) {
			timedOut = true
			h.logf("giving up waiting after %s: %d job(s) still active", budget, last.nonTerminal)
			break
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			h.logf("waiting: %d jobs, %d active, %d documents done", last.jobs, last.nonTerminal, last.progress)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopRun()
	wg.Wait()
	fs := faults.finish(m)
	h.logf("all jobs terminal (or gave up); checking")
	rep, err := h.check(ctx, c, fs, timedOut)
	if rep != nil {
		faults.mu.Lock()
		rep.Skipped = append(rep.Skipped, faults.skipped...)
		faults.mu.Unlock()
	}
	return rep, err
}

// ---- ingestion ----

var vocab = func() []string {
	r := rand.New(rand.NewPCG(1, 2))
	letters := "abcdefghijklmnopqrstuvwxyz"
	out := make([]string, 400)
	for i := range out {
		n := 3 + r.IntN(8)
		var b strings.Builder
		for range n {
			b.WriteByte(letters[r.IntN(len(letters))])
		}
		out[i] = b.String()
	}
	return out
}()

func document(rng *rand.Rand, i int, bad bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Document %d\n\n", i)
	size := 2000 + rng.IntN(3000)
	para := 0
	for b.Len() < size {
		if para%3 == 0 {
			fmt.Fprintf(&b, "## Section %d of document %d\n\n", para/3+1, i)
		}
		n := 40 + rng.IntN(60)
		for w := range n {
			if w > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(vocab[rng.IntN(len(vocab))])
		}
		if bad && para == 1 {
			b.WriteString(" " + badMarker + " content the embedder always refuses")
		}
		b.WriteString(".\n\n")
		para++
	}
	return b.String()
}

func (h *harness) ingest(ctx context.Context, c *corpus, rng *rand.Rand) {
	fail := func(err error) {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	for i := range 3 {
		var id string
		err := retry(ctx, 60*time.Second, func(cctx context.Context) error {
			resp, err := h.content.CreateSource(cctx, &pipelinev1.CreateSourceRequest{Name: fmt.Sprintf("chaos-%s-%d", h.id, i)})
			if err == nil {
				id = resp.GetSource().GetSourceId()
			}
			return err
		}, nil)
		if err != nil {
			fail(fmt.Errorf("create source: %w", err))
			return
		}
		c.sources = append(c.sources, id)
	}
	nBad := 10
	badAt := map[int]bool{}
	for len(badAt) < nBad {
		badAt[rng.IntN(h.opts.docs)] = true
	}
	calls := (h.opts.docs + h.opts.perCall - 1) / h.opts.perCall
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for call := range calls {
		var docs []*pipelinev1.DocumentInput
		for i := call * h.opts.perCall; i < min((call+1)*h.opts.perCall, h.opts.docs); i++ {
			uri := fmt.Sprintf("docs/doc-%05d.md", i)
			if badAt[i] {
				c.mu.Lock()
				c.badURIs[uri] = true
				c.mu.Unlock()
			}
			docs = append(docs, &pipelinev1.DocumentInput{Uri: uri, ContentType: "text/markdown", Content: document(rng, i, badAt[i])})
		}
		req := &pipelinev1.IngestDocumentsRequest{SourceId: c.sources[call%len(c.sources)], Documents: docs}
		var resp *pipelinev1.IngestDocumentsResponse
		err := retry(ctx, 90*time.Second, func(cctx context.Context) error {
			var err error
			resp, err = h.content.IngestDocuments(cctx, req)
			return err
		}, func() { c.mu.Lock(); c.retries++; c.mu.Unlock() })
		if err != nil {
			fail(fmt.Errorf("ingest call %d: %w", call, err))
			return
		}
		c.mu.Lock()
		for _, d := range resp.GetDocuments() {
			c.docURI[d.GetDocumentId()] = d.GetUri()
		}
		if id := resp.GetJob().GetJobId(); id != "" {
			c.jobIDs[id] = true
		}
		c.calls++
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			fail(ctx.Err())
			return
		case <-tick.C:
		}
	}
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
}

// retry calls f (each with a 20 s deadline) until it succeeds or limit passes.
func retry(ctx context.Context, limit time.Duration, f func(context.Context) error, onRetry func()) error {
	end := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(end) {
			return err
		}
		if onRetry != nil {
			onRetry()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ---- monitoring ----

func (h *harness) listJobs(ctx context.Context) ([]*pipelinev1.Job, error) {
	var out []*pipelinev1.Job
	token := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := h.jobs.ListJobs(cctx, &pipelinev1.ListJobsRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetJobs()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func terminal(s pipelinev1.JobStatus) bool {
	return s == pipelinev1.JobStatus_JOB_STATUS_COMPLETED || s == pipelinev1.JobStatus_JOB_STATUS_FAILED ||
		s == pipelinev1.JobStatus_JOB_STATUS_CANCELLED
}

func (h *harness) monitorLoop(ctx context.Context, m *monitor) {
	for ctx.Err() == nil {
		jobs, err := h.listJobs(ctx)
		now := time.Now()
		s := sample{at: now, ok: err == nil}
		var active []string
		if err == nil {
			s.jobs = len(jobs)
			m.mu.Lock()
			for _, j := range jobs {
				s.progress += j.GetProcessing().GetProcessedCount() + j.GetProcessing().GetErrorCount()
				if terminal(j.GetStatus()) {
					if _, ok := m.terminalAt[j.GetJobId()]; !ok {
						m.terminalAt[j.GetJobId()] = now
					}
				} else {
					s.nonTerminal++
					active = append(active, j.GetJobId())
				}
			}
			m.activeJobIDs = active
			m.mu.Unlock()
		}
		m.mu.Lock()
		m.samples = append(m.samples, s)
		m.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ---- faults ----

type faultLog struct {
	mu   sync.Mutex
	recs []*faultRec
	done chan struct{}
	// skipped lists faults not injected, and why.
	skipped []string
}

func faultsDone(f *faultLog) bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func faultsEnd(f *faultLog) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t time.Time
	for _, r := range f.recs {
		if r.ReadyAt.After(t) {
			t = r.ReadyAt
		}
	}
	return t
}

type plannedFault struct {
	after time.Duration
	kind  string
}

func (h *harness) plan() []plannedFault {
	s := time.Second
	if h.opts.short {
		return []plannedFault{
			{3 * s, "kill-worker"},
			{6 * s, "milvus-unavailable"},
			{9 * s, "kill-server"},
			{14 * s, "redis-data-loss"},
			{18 * s, "kill-worker"},
		}
	}
	return []plannedFault{
		{3 * s, "kill-worker"},
		{6 * s, "milvus-unavailable"},
		{9 * s, "kill-server"},
		{13 * s, "kill-worker"},
		{16 * s, "redis-data-loss"},
		{19 * s, "milvus-unavailable"},
		{25 * s, "kill-worker"},
		{28 * s, "postgres-restart"},
		{31 * s, "kill-server"},
		{34 * s, "milvus-unavailable"},
		{37 * s, "kill-worker"},
		{41 * s, "redis-data-loss"},
		{45 * s, "milvus-unavailable"},
		{49 * s, "kill-worker"},
		{52 * s, "kill-server"},
	}
}

func (h *harness) injectFaults(ctx context.Context, m *monitor, rng *rand.Rand) *faultLog {
	fl := &faultLog{done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		begin := time.Now()
		for _, pf := range h.plan() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(begin.Add(pf.after))):
			}
			m.mu.Lock()
			active := append([]string(nil), m.activeJobIDs...)
			m.mu.Unlock()
			rec := &faultRec{Kind: pf.kind, At: time.Now(), active: active}
			if err := h.inject(ctx, pf.kind, rec, rng); err != nil {
				if ctx.Err() != nil {
					return
				}
				rec.Detail += " ERROR: " + err.Error()
			}
			if rec.Kind == "" { // skipped
				fl.mu.Lock()
				fl.skipped = append(fl.skipped, rec.Detail)
				fl.mu.Unlock()
				continue
			}
			rec.ReadyAt = time.Now()
			h.logf("fault %s: %s (%d jobs active)", rec.Kind, rec.Detail, len(active))
			fl.mu.Lock()
			fl.recs = append(fl.recs, rec)
			fl.mu.Unlock()
		}
	}()
	return fl
}

func (h *harness) inject(ctx context.Context, kind string, rec *faultRec, rng *rand.Rand) error {
	switch kind {
	case "kill-worker":
		h.mu.Lock()
		var alive []*proc
		for _, w := range h.workers {
			if w.alive() {
				alive = append(alive, w)
			}
		}
		h.mu.Unlock()
		if len(alive) == 0 {
			return fmt.Errorf("no worker alive")
		}
		w := alive[rng.IntN(len(alive))]
		w.kill9()
		time.Sleep(time.Second)
		nw, err := h.startWorker()
		if err != nil {
			return err
		}
		rec.Detail = fmt.Sprintf("kill -9 %s (pid %d) while its batches ran; started %s", w.name, w.cmd.Process.Pid, nw.name)
	case "kill-server":
		h.mu.Lock()
		s := h.server
		h.mu.Unlock()
		s.kill9()
		time.Sleep(2 * time.Second)
		if err := h.startServer(ctx); err != nil {
			return err
		}
		h.mu.Lock()
		rec.Detail = fmt.Sprintf("kill -9 %s (pid %d), restarted as server-%d after 2s", s.name, s.cmd.Process.Pid, h.serverStart)
		h.mu.Unlock()
	case "milvus-unavailable":
		n := 5 + rng.IntN(6)
		resp, err := http.Post(fmt.Sprintf("http://%s/fail?n=%d&code=Unavailable", h.milvusControl, n), "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		rec.Detail = fmt.Sprintf("next %d Milvus calls fail with UNAVAILABLE", n)
	case "redis-data-loss":
		n, err := h.deleteRedisKeys(ctx)
		rec.Detail = fmt.Sprintf("deleted all %d keys of this run (%s*, taskq:{%s*), standing in for FLUSHALL, which would hit other users of this Redis", n, h.prefix, h.prefix)
		return err
	case "postgres-restart":
		if !h.opts.allowPostgresRestart {
			rec.Kind = ""
			rec.Detail = "postgres-restart skipped (needs -allow-postgres-restart; disturbs other users of this Postgres)"
			return nil
		}
		out, err := exec.CommandContext(ctx, "sh", "-c", "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart").CombinedOutput()
		rec.Detail = "pg_ctlcluster restart " + strings.TrimSpace(string(out))
		return err
	default:
		return fmt.Errorf("unknown fault %q", kind)
	}
	return nil
}

// finish computes the recovery figures of every fault from the samples.
func (f *faultLog) finish(m *monitor) []*faultRec {
	<-f.done
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range f.recs {
		r.NextProgressSec, r.ActiveDoneSec = -1, -1
		var before int64 = -1
		for _, s := range m.samples {
			if s.at.Before(r.At) {
				if s.ok {
					before = s.progress
				}
				continue
			}
			if s.ok && before >= 0 && s.progress > before {
				r.NextProgressSec = s.at.Sub(r.At).Seconds()
				break
			}
		}
		var last time.Time
		done := true
		for _, id := range r.active {
			t, ok := m.terminalAt[id]
			if !ok {
				done = false
				break
			}
			if t.After(last) {
				last = t
			}
		}
		if done {
			r.ActiveDoneSec = max(0, last.Sub(r.At).Seconds())
		}
	}
	return f.recs
}
