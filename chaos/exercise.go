package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

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
	start       time.Time // the look began (ListJobs sent)
	at          time.Time // and ended
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
	At      time.Time `json:"at"`       // the fault struck
	ReadyAt time.Time `json:"ready_at"` // the harness was done injecting it (restarts included)
	// Seconds from the fault until progress was seen again once it was over: the documents done
	// over all jobs grew between two looks that both began after ReadyAt.
	NextProgressSec float64 `json:"next_progress_s"`
	// The batches the fault hit (see affectedBatches) and the seconds from the fault until the
	// last of them was finished.
	Affected        int     `json:"affected_batches"`
	AffectedWhat    string  `json:"affected_what"`
	AffectedDoneSec float64 `json:"affected_batches_done_s"`
	// How many hit batches the reconciler put back in the queue (a new message) before the next
	// fault, and the seconds from the fault until it had done so for the last of them (seen by
	// polling every 500 ms).
	Requeued    int     `json:"affected_batches_requeued"`
	RequeuedSec float64 `json:"affected_batches_requeued_s"`
	// Seconds from the fault until every hit batch had been claimed again by a worker (or was
	// done): when the work the fault took away was picked up again.
	AffectedClaimedSec float64 `json:"affected_batches_claimed_again_s"`
	// Seconds from the fault until every job active at that moment was terminal.
	ActiveDoneSec float64 `json:"active_jobs_terminal_s"`
	// Failed: injecting it went wrong (Detail says how).
	Failed   bool `json:"failed,omitempty"`
	active   []string
	affected []batchRef

	mu          sync.Mutex
	claimedLast time.Time // when the last hit batch was seen claimed again
	unclaimed   int       // hit batches not yet seen claimed again
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

	select {
	case <-ingestDone:
	case err := <-faults.fatal:
		stopRun()
		<-ingestDone
		wg.Wait()
		return nil, err
	}
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
		select {
		case err := <-faults.fatal:
			stopRun()
			wg.Wait()
			return nil, err
		default:
		}
		m.mu.Lock()
		var last sample
		for i := len(m.samples) - 1; i >= 0; i-- { // the last good look (the server may be restarting)
			if m.samples[i].ok {
				last = m.samples[i]
				break
			}
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
	fs := faults.finish(ctx, h, m)
	h.logf("all jobs terminal (or gave up); checking")
	faults.mu.Lock()
	skippedKinds := faults.skippedKinds
	faults.mu.Unlock()
	rep, err := h.check(ctx, c, fs, skippedKinds, timedOut)
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
		start := time.Now()
		jobs, err := h.listJobs(ctx)
		now := time.Now()
		s := sample{start: start, at: now, ok: err == nil}
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
	// skipped lists faults not injected, and why; skippedKinds their kinds.
	skipped      []string
	skippedKinds map[string]bool
	// requeues: when each hit batch was seen enqueued again (by trackClaims).
	requeues map[string][]time.Time
	// fatal gets the error of a fault that could not bring back what it stopped (the server,
	// a worker, Redis or Postgres). The run cannot go on then, and the fault plan ends.
	fatal chan error
}

// errRestart marks a fault's failure to start again what it stopped: a problem of the harness
// or the machine (a port taken, a binary gone), not of the service, which ends the run at once.
var errRestart = errors.New("could not start again what the fault stopped")

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

// The faults, in the order of the plan.
const (
	faultKillWorker  = "kill-worker"
	faultKillServer  = "kill-server"
	faultMilvus      = "milvus-unavailable"
	faultRedisRstrt  = "redis-restart"
	faultFlushAll    = "redis-flushall"
	faultPostgresRst = "postgres-restart"
)

func (h *harness) plan() []plannedFault {
	s := time.Second
	if h.opts.short {
		return []plannedFault{
			{3 * s, faultKillWorker},
			{6 * s, faultMilvus},
			{9 * s, faultKillServer},
			{13 * s, faultRedisRstrt},
			{17 * s, faultKillWorker},
			{21 * s, faultPostgresRst},
			{26 * s, faultFlushAll},
			{30 * s, faultKillWorker},
			{33 * s, faultMilvus},
		}
	}
	return []plannedFault{
		{3 * s, faultKillWorker},
		{6 * s, faultMilvus},
		{9 * s, faultKillServer},
		{13 * s, faultRedisRstrt},
		{16 * s, faultKillWorker},
		{19 * s, faultMilvus},
		{23 * s, faultPostgresRst},
		{27 * s, faultFlushAll},
		{31 * s, faultKillWorker},
		{34 * s, faultKillServer},
		{38 * s, faultMilvus},
		{41 * s, faultRedisRstrt},
		{45 * s, faultKillWorker},
		{49 * s, faultPostgresRst},
		{54 * s, faultFlushAll},
		{58 * s, faultMilvus},
		{61 * s, faultKillWorker},
		{65 * s, faultKillServer},
		{70 * s, faultKillWorker},
	}
}

func (h *harness) injectFaults(ctx context.Context, m *monitor, rng *rand.Rand) *faultLog {
	fl := &faultLog{done: make(chan struct{}), skippedKinds: map[string]bool{}, requeues: map[string][]time.Time{}, fatal: make(chan error, 1)}
	go h.trackClaims(ctx, fl)
	go func() {
		defer close(fl.done)
		begin := time.Now()
		for i, pf := range h.plan() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(begin.Add(pf.after))):
			}
			m.mu.Lock()
			active := append([]string(nil), m.activeJobIDs...)
			m.mu.Unlock()
			rec := &faultRec{Kind: pf.kind, At: time.Now(), active: active}
			if err := h.inject(ctx, pf.kind, i, rec, rng); err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, errRestart) {
					fl.fatal <- fmt.Errorf("fault %s: %w", pf.kind, err)
					return
				}
				rec.Detail += " ERROR: " + err.Error()
				rec.Failed = true
			}
			if rec.Kind == "" { // skipped
				fl.mu.Lock()
				if !fl.skippedKinds[pf.kind] {
					fl.skipped = append(fl.skipped, rec.Detail)
				}
				fl.skippedKinds[pf.kind] = true
				fl.mu.Unlock()
				continue
			}
			rec.ReadyAt = time.Now()
			rec.unclaimed = len(rec.affected)
			h.logf("fault %s: %s (%d jobs active)", rec.Kind, rec.Detail, len(active))
			fl.mu.Lock()
			fl.recs = append(fl.recs, rec)
			fl.mu.Unlock()
		}
	}()
	return fl
}

var milvusCodes = []string{"Unavailable", "DeadlineExceeded", "ResourceExhausted"}

func (h *harness) inject(ctx context.Context, kind string, i int, rec *faultRec, rng *rand.Rand) error {
	if kind != faultKillWorker {
		open, err := h.openBatches(ctx)
		if err != nil {
			h.logf("listing open batches before %s: %v", kind, err)
		}
		rec.At = time.Now()
		rec.affected, rec.AffectedWhat = affectedBatches(kind, open, 0, h.liveWorkerPIDs())
	}
	switch kind {
	case faultKillWorker:
		w, open, err := h.busyWorker(ctx, rng)
		if err != nil {
			return err
		}
		rec.At = time.Now()
		rec.affected, rec.AffectedWhat = affectedBatches(kind, open, w.cmd.Process.Pid, nil)
		running := len(rec.affected)
		w.kill9()
		time.Sleep(time.Second)
		nw, err := h.startWorker()
		if err != nil {
			return fmt.Errorf("%w: %w", errRestart, err)
		}
		rec.Detail = fmt.Sprintf("kill -9 %s (pid %d) while it held %d running batch(es); started %s", w.name, w.cmd.Process.Pid, running, nw.name)
	case faultKillServer:
		h.mu.Lock()
		s := h.server
		h.mu.Unlock()
		s.kill9()
		time.Sleep(2 * time.Second)
		if err := h.startServer(ctx); err != nil {
			return fmt.Errorf("%w: %w", errRestart, err)
		}
		h.mu.Lock()
		rec.Detail = fmt.Sprintf("kill -9 %s (pid %d), restarted as server-%d after 2s", s.name, s.cmd.Process.Pid, h.serverStart)
		h.mu.Unlock()
	case faultMilvus:
		n := 5 + rng.IntN(6)
		code := milvusCodes[i%len(milvusCodes)]
		resp, err := http.Post(fmt.Sprintf("http://%s/fail?n=%d&code=%s", h.milvusControl, n, code), "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("milvusfake /fail: %s", resp.Status)
		}
		rec.Detail = fmt.Sprintf("next %d Milvus calls fail with %s", n, code)
	case faultRedisRstrt:
		if h.redis == nil {
			rec.Kind = ""
			rec.Detail = "redis-restart skipped: -redis-url given, and restarting a shared Redis would hit its other users"
			return nil
		}
		t0 := time.Now()
		before, after, err := h.redis.restart(ctx, 2*time.Second)
		if err != nil {
			return fmt.Errorf("%w: redis-server: %w", errRestart, err)
		}
		rec.Detail = fmt.Sprintf("redis-server stopped (SIGTERM: append-only file written), down 2s, restarted as %s: %d keys before, %d after; %.1fs in all",
			h.redis.p.name, before, after, time.Since(t0).Seconds())
		return nil
	case faultFlushAll:
		if h.redis == nil {
			n, err := h.deleteRedisKeys(ctx)
			rec.Detail = fmt.Sprintf("deleted all %d keys of this run (%s*, taskq:{%s*) at once, standing in for FLUSHALL on a shared Redis (-redis-url)", n, h.prefix, h.prefix)
			return err
		}
		n, err := h.redis.flushAll(ctx)
		rec.Detail = fmt.Sprintf("FLUSHALL: all %d keys gone (queue stream and consumer group, markers, status keys)", n)
		return err
	case faultPostgresRst:
		if h.pg == nil {
			rec.Kind = ""
			rec.Detail = "postgres-restart skipped: -postgres-url given, and restarting a shared Postgres would hit its other users"
			return nil
		}
		t0 := time.Now()
		oldPID, newPID, err := h.pg.restartImmediate(ctx)
		if err != nil {
			return fmt.Errorf("%w: Postgres: %w", errRestart, err)
		}
		rec.Detail = fmt.Sprintf("pg_ctl restart -m immediate (no checkpoint, WAL replayed on start): postmaster %d -> %d, %.1fs until it accepted connections",
			oldPID, newPID, time.Since(t0).Seconds())
		return nil
	default:
		return fmt.Errorf("unknown fault %q", kind)
	}
	return nil
}

// liveWorkerPIDs are the pids of the workers running now.
func (h *harness) liveWorkerPIDs() map[int]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int]bool{}
	for _, w := range h.workers {
		if w.alive() {
			out[w.cmd.Process.Pid] = true
		}
	}
	return out
}

// busyWorker picks a live worker that holds a running batch in Postgres (under a live lease),
// so the kill lands mid-batch; it waits up to 10 s for one, then takes any live worker. It also
// returns the open batches it saw last.
func (h *harness) busyWorker(ctx context.Context, rng *rand.Rand) (*proc, []batchRef, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		byPID := map[int]*proc{}
		var alive []*proc
		for _, w := range h.workers {
			if w.alive() {
				byPID[w.cmd.Process.Pid] = w
				alive = append(alive, w)
			}
		}
		h.mu.Unlock()
		if len(alive) == 0 {
			return nil, nil, fmt.Errorf("no worker alive")
		}
		open, _ := h.openBatches(ctx)
		var busy []*proc
		seen := map[int]bool{}
		for _, b := range open {
			if w := byPID[b.pid]; w != nil && !seen[b.pid] {
				seen[b.pid] = true
				busy = append(busy, w)
			}
		}
		if len(busy) > 0 {
			sort.Slice(busy, func(i, j int) bool { return busy[i].name < busy[j].name })
			return busy[rng.IntN(len(busy))], open, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return alive[rng.IntN(len(alive))], open, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// finish computes the recovery figures of every fault from the samples and, for the affected
// batches, from their finished_at in Postgres.
func (f *faultLog) finish(ctx context.Context, h *harness, m *monitor) []*faultRec {
	<-f.done
	m.mu.Lock()
	defer m.mu.Unlock()
	f.mu.Lock() // the claim tracker may still be finishing a round
	defer f.mu.Unlock()
	for _, r := range f.recs {
		r.NextProgressSec, r.ActiveDoneSec, r.AffectedDoneSec = -1, -1, -1
		var base int64 = -1
		for _, s := range m.samples {
			if !s.ok || s.start.Before(r.ReadyAt) {
				continue
			}
			if base < 0 {
				base = s.progress
				continue
			}
			if s.progress > base {
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
		r.Affected = len(r.affected)
		r.AffectedDoneSec, r.AffectedClaimedSec = 0, 0
		if len(r.affected) > 0 {
			r.AffectedDoneSec = -1
			ids := make([]string, len(r.affected))
			for i, b := range r.affected {
				ids[i] = b.id
			}
			if t, ok, err := h.batchesFinished(ctx, ids); err == nil && ok {
				r.AffectedDoneSec = max(0, t.Sub(r.At).Seconds())
			}
			// A re-enqueue is the doing of the latest fault that hit the batch before it.
			r.RequeuedSec = -1
			for _, b := range r.affected {
				counted := false
				for _, t := range f.requeues[b.id] {
					if latestHitBefore(f.recs, b.id, t) != r {
						continue
					}
					if !counted {
						r.Requeued++
						counted = true
					}
					r.RequeuedSec = max(r.RequeuedSec, t.Sub(r.At).Seconds())
				}
			}
			r.mu.Lock()
			r.AffectedClaimedSec = -1
			switch {
			case r.unclaimed == 0:
				r.AffectedClaimedSec = max(0, r.claimedLast.Sub(r.At).Seconds())
			case r.AffectedDoneSec >= 0: // done between the tracker's last look and the end
				r.AffectedClaimedSec = r.AffectedDoneSec
			}
			r.mu.Unlock()
		}
	}
	return f.recs
}

// latestHitBefore is the last fault before t whose hit batches include id.
func latestHitBefore(recs []*faultRec, id string, t time.Time) *faultRec {
	var latest *faultRec
	for _, r := range recs {
		if r.At.After(t) {
			continue
		}
		for _, b := range r.affected {
			if b.id == id && (latest == nil || r.At.After(latest.At)) {
				latest = r
			}
		}
	}
	return latest
}

// batchRef is an open batch at the moment of a fault.
type batchRef struct {
	id, state string
	claims    int
	enqueues  int
	pid       int // of the worker holding it under a live lease (running only)
}

// openBatches lists the queued and running batches; a running batch's pid is that of the worker
// process holding it under a live lease (worker ids are <host>-<pid>-<random>).
func (h *harness) openBatches(ctx context.Context) ([]batchRef, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, h.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(cctx, `SELECT id::text, state, claims, enqueues, worker, coalesce(lease_until > now(), false)
		FROM job_batches WHERE state IN ('queued', 'running')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []batchRef
	for rows.Next() {
		var b batchRef
		var worker string
		var live bool
		if err := rows.Scan(&b.id, &b.state, &b.claims, &b.enqueues, &worker, &live); err != nil {
			return nil, err
		}
		if parts := strings.Split(worker, "-"); b.state == "running" && live && len(parts) >= 3 {
			b.pid, _ = strconv.Atoi(parts[len(parts)-2])
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// affectedBatches picks what a fault hits: the killed worker's batches, the queued batches whose
// messages a Redis fault may lose, or the running batches whose reports a server, Postgres or
// store fault interrupts.
func affectedBatches(kind string, open []batchRef, killedPID int, live map[int]bool) (hit []batchRef, what string) {
	for _, b := range open {
		var ok bool
		switch kind {
		case faultKillWorker:
			ok, what = b.pid == killedPID && killedPID > 0, "held by the killed worker"
		case faultRedisRstrt, faultFlushAll:
			ok, what = b.state == "queued", "queued (messages in Redis)"
		default:
			ok, what = b.state == "running" && live[b.pid], "running"
		}
		if ok {
			hit = append(hit, b)
		}
	}
	return hit, what
}

// trackClaims watches the hit batches of every fault every 500 ms until ctx ends: when each was
// enqueued again (its enqueues count grew: the reconciler sent a new message) and when every hit
// batch of a fault had been claimed again (its claims count grew) or finished.
func (h *harness) trackClaims(ctx context.Context, fl *faultLog) {
	lastEnqueues := map[string]int{}
	done := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		fl.mu.Lock()
		recs := append([]*faultRec(nil), fl.recs...)
		fl.mu.Unlock()
		var ids []string
		for _, r := range recs {
			for _, b := range r.affected {
				if _, ok := lastEnqueues[b.id]; !ok {
					lastEnqueues[b.id] = b.enqueues
				}
				if !done[b.id] {
					ids = append(ids, b.id)
				}
			}
		}
		if len(ids) == 0 {
			continue
		}
		now, states, err := h.batchStates(ctx, ids)
		if err != nil {
			continue // Postgres restarting: next round
		}
		fl.mu.Lock()
		for id, st := range states {
			if st.enqueues > lastEnqueues[id] {
				fl.requeues[id] = append(fl.requeues[id], now)
				lastEnqueues[id] = st.enqueues
			}
			done[id] = st.state == "done"
		}
		fl.mu.Unlock()
		for _, r := range recs {
			r.mu.Lock()
			if r.unclaimed > 0 {
				n := 0
				for _, b := range r.affected {
					if st, ok := states[b.id]; !ok || (st.claims <= b.claims && st.state != "done") {
						if !done[b.id] || !ok {
							n++
						}
					}
				}
				if n == 0 {
					r.claimedLast = now
				}
				r.unclaimed = n
			}
			r.mu.Unlock()
		}
	}
}

// batchStates reads the claims and state of some batches.
func (h *harness) batchStates(ctx context.Context, ids []string) (time.Time, map[string]batchRef, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, h.dbURL)
	if err != nil {
		return time.Time{}, nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(cctx, `SELECT id::text, state, claims, enqueues FROM job_batches WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return time.Time{}, nil, err
	}
	defer rows.Close()
	out := map[string]batchRef{}
	for rows.Next() {
		var b batchRef
		if err := rows.Scan(&b.id, &b.state, &b.claims, &b.enqueues); err != nil {
			return time.Time{}, nil, err
		}
		out[b.id] = b
	}
	return time.Now(), out, rows.Err()
}

// batchesFinished returns when the last of the batches was finished, and whether all were.
func (h *harness) batchesFinished(ctx context.Context, ids []string) (time.Time, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, h.dbURL)
	if err != nil {
		return time.Time{}, false, err
	}
	defer conn.Close(context.Background())
	var last *time.Time
	var unfinished int
	err = conn.QueryRow(cctx, `SELECT max(finished_at), count(*) FILTER (WHERE finished_at IS NULL)
		FROM job_batches WHERE id = ANY($1::uuid[])`, ids).Scan(&last, &unfinished)
	if err != nil || last == nil {
		return time.Time{}, false, err
	}
	return *last, unfinished == 0, nil
}
