// Package worker is the processing side: it takes batch ids from the queue, claims each batch in
// Postgres under a lease, and for each document loads, chunks, embeds and stores vectors, then
// streams the results to the server (WorkerService.ReportProgress), which records them.
// Documents that fail are recorded and the batch goes on; transient failures are retried with
// backoff. It knows the domain packages and the generated API client, not the server's code.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/chunk"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/htmlmd"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/retry"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Config tunes a Worker. Zero fields take the documented defaults.
type Config struct {
	// ID names the worker in leases and logs. Defaults to host-pid-random.
	ID string
	// Lease is how long the worker holds a batch between reports; it reports at least every
	// Lease/3. Defaults to 2m.
	Lease time.Duration
	// Retry is the policy for transient failures of one document's steps.
	Retry retry.Policy
	// EmbedBatchSize is how many chunks go to the embedder per call. Defaults to 64.
	EmbedBatchSize int
	// ReportInterval is the longest a finished document's result waits before it is reported;
	// results are sent together to spare the server one write per document. Defaults to 200ms.
	ReportInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics records documents, stage times and (with Slots) busy slots. Nil records nothing.
	Metrics *metrics.Metrics
	// Slots is how many batches the worker is given at once (the queue's concurrency), for the
	// utilization gauges. 0: no utilization gauges.
	Slots int
	// TracerProvider makes the document and stage spans. Nil: no spans.
	TracerProvider trace.TracerProvider
}

// Deps are the worker's collaborators.
type Deps struct {
	Jobs     *jobs.Manager
	Content  *content.PgStore
	Chunker  *chunk.Chunker
	Embedder embed.Embedder
	Vectors  vector.Store
	// Reporter is the server's WorkerService.
	Reporter pipelinev1.WorkerServiceClient
	// Activity hears which batches the worker works on and each document it finishes (the
	// worker registry). Nil: nobody listens.
	Activity Activity
}

// Activity is told what a worker does. Its methods must be cheap and safe for concurrent use.
type Activity interface {
	// BatchStarted: the worker claimed the batch of the job and works on it.
	BatchStarted(jobID, batchID uuid.UUID)
	// BatchEnded: the worker stopped working on the batch (done, stopped or handed back).
	BatchEnded(batchID uuid.UUID)
	// DocumentDone: the worker finished one document, failed or not.
	DocumentDone(failed bool)
}

// Worker processes batches. One Worker serves many batches at once (HandleBatch is safe for
// concurrent use).
type Worker struct {
	cfg         Config
	deps        Deps
	log         *slog.Logger
	fingerprint string
	tracer      trace.Tracer
	busy        func(delta int)
	untrack     func()
	// ends stops the batches of a job that ends under them (ListenForEnds).
	ends jobEnds
	// background counts the batches whose second stage and last report, or last report only, go
	// on after their slot took the next one (batchRun.do); finishing is held by the one batch at
	// a time whose second stage does.
	background *inFlight
	finishing  chan struct{}
}

// DefaultID is host-pid-random, unique per process.
func DefaultID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", cmp.Or(host, "worker"), os.Getpid(), uuid.NewString()[:8])
}

// New returns a worker.
func New(cfg Config, deps Deps) *Worker {
	cfg.ID = cmp.Or(cfg.ID, DefaultID())
	cfg.Lease = cmp.Or(cfg.Lease, 2*time.Minute)
	cfg.EmbedBatchSize = cmp.Or(cfg.EmbedBatchSize, 64)
	cfg.ReportInterval = cmp.Or(cfg.ReportInterval, 200*time.Millisecond)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	w := &Worker{
		cfg:         cfg,
		deps:        deps,
		log:         cfg.Logger.With("worker_id", cfg.ID),
		fingerprint: Fingerprint(deps.Chunker, deps.Embedder),
		tracer:      newTracer(cfg.TracerProvider),
		background:  newInFlight(),
		finishing:   make(chan struct{}, 1),
	}
	w.trackSlots()
	return w
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Fingerprint identifies the chunking and embedding settings: a document indexed under another
// fingerprint is processed again even if its content did not change.
func Fingerprint(c *chunk.Chunker, e embed.Embedder) string {
	return c.Fingerprint() + "|" + e.Fingerprint()
}

// HandleBatch is the queue handler. It returns nil when the batch is handled (its documents
// chunked and embedded; the rest goes on in the background, see batchRun.do) or needs no
// handling (done, claimed by a live worker, job finished or deleted), and an error only when it
// could not even claim (Postgres away): the queue then delivers the message again later.
func (w *Worker) HandleBatch(ctx context.Context, batchID uuid.UUID) error {
	b, job, err := w.deps.Jobs.ClaimBatch(ctx, batchID, w.cfg.ID, w.cfg.Lease)
	switch {
	case errors.Is(err, jobs.ErrNotClaimable), errors.Is(err, errs.ErrNotFound):
		w.log.DebugContext(ctx, "batch needs no work", "batch_id", batchID, "reason", err)
		return nil
	case err != nil:
		return fmt.Errorf("claim batch %s: %w", batchID, err)
	}
	// A slot is busy while it works on a claimed batch.
	defer w.slotBusy()()
	ctx = w.observeBatch(ctx, b, job)
	log := w.log.With("job_id", b.JobID, "batch_id", b.ID, "source_id", job.SourceID)
	log.InfoContext(ctx, "batch claimed", "documents", len(b.DocumentIDs), "claims", b.Claims)
	run := &batchRun{w: w, b: b, job: job, log: log, ended: func() {}}
	if a := w.deps.Activity; a != nil {
		a.BatchStarted(b.JobID, b.ID)
		run.ended = func() { a.BatchEnded(b.ID) }
	}
	return run.do(ctx)
}

// batchRun is one claimed batch being worked on.
type batchRun struct {
	w   *Worker
	b   *jobs.Batch
	job *jobs.Job
	log *slog.Logger

	rep *reporter
	// ended tells the worker's Activity that the batch is no longer in hand: when do returns,
	// or once what do left to the background is over.
	ended func()
}

// do works on the claimed batch: its first stage here, its second stage beside it (commitLoop),
// and what is left once the first stage is done in the background or here (see the end).
func (r *batchRun) do(ctx context.Context) error {
	w := r.w
	// Work stops when the server says so (cancelled, lease lost) or the worker shuts down.
	workCtx, stop := context.WithCancelCause(ctx)
	unwatch := w.ends.watch(r.b.JobID, stop)
	r.rep = newReporter(w, r.b, stop)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); r.rep.heartbeat(workCtx, w.cfg.Lease/3) }()
	stopHeartbeat := func() { stop(nil); <-hbDone }
	// release lets go of what the batch holds: when do returns, or once the background is done.
	release := func() {
		stopHeartbeat()
		r.rep.close()
		r.ended()
		unwatch()
	}
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()

	// A batch claimed for the first time has no results yet: only a later claim (its worker
	// died or handed it back) reads which documents are done, sparing a statement per batch on
	// the path of every small job.
	var done map[uuid.UUID]*jobs.DocumentResult
	if r.b.Claims > 1 {
		var err error
		if done, err = w.deps.Jobs.ResultsOf(workCtx, r.b.JobID, r.b.DocumentIDs); err != nil {
			return r.giveBack(ctx, fmt.Errorf("read results: %w", err))
		}
	}
	todo := make([]uuid.UUID, 0, len(r.b.DocumentIDs))
	for _, docID := range r.b.DocumentIDs {
		if res := done[docID]; res != nil && res.Status != jobs.DocPending {
			continue // done by an earlier claim of this batch (its worker died)
		}
		todo = append(todo, docID)
	}
	// Two stages per document, overlapped: this loop reads, chunks and embeds a document (no
	// side effects) while commitLoop stores the previous ones' vectors, writes their index states
	// and reports them. handOff+1 documents ahead at most (waiting in the channel, one in hand),
	// and no more than handOffChunks chunks waiting, which bounds the memory they hold and the
	// work a cancel wastes.
	tasks := make(chan *docTask, handOff)
	waiting := semaphore.NewWeighted(handOffChunks)
	committed := make(chan struct{})
	go func() { defer close(committed); r.commitLoop(workCtx, stop, tasks, waiting) }()
	// The groups of documents are read one ahead of the first stage, so it does not wait for
	// Postgres between groups.
	loads := make(chan loadedGroup, 1)
	loadsDone := make(chan struct{})
	go func() {
		defer close(loadsDone)
		for i := 0; i < len(todo); {
			g := w.loadGroup(workCtx, todo[i:min(i+loadGroupDocs, len(todo))])
			select {
			case loads <- g:
			case <-workCtx.Done():
				return
			}
			i += g.covered
		}
	}()
	var loaded loadedGroup // its documents not yet taken: loaded.covered
	for _, docID := range todo {
		if workCtx.Err() != nil {
			break
		}
		if loaded.covered == 0 {
			select {
			case loaded = <-loads:
			case <-workCtx.Done():
			}
		}
		loaded.covered--
		in := loaded.docs[docID]
		delete(loaded.docs, docID) // a document listed twice is read again the second time
		if in == nil {
			in = &docWork{}
		}
		t := w.prepareDocument(workCtx, docID, in)
		// A document with more chunks than the budget waits until none is left waiting. Stopped
		// meanwhile, it still goes, holding nothing, for commitLoop to drop.
		if n := int64(min(max(t.chunkCount(), 1), handOffChunks)); waiting.Acquire(workCtx, n) == nil {
			t.held = n
		}
		tasks <- t
	}
	close(tasks)
	// The first stage is done. The slot takes its next batch while the second stage stores and
	// reports what is left of this one and sends the last report, all in the background
	// (docs/decisions/0035): one batch of the worker's at a time, so that the stages of a slot
	// overlap across its batches without more batches in hand than slots otherwise. With another
	// batch finishing so, this one finishes here (a slot never waits for another batch), and only
	// its last report goes in the background (docs/decisions/0030).
	whole := false // the second stage goes to the background too, not only the last report
	select {
	case w.finishing <- struct{}{}:
		whole = true
	default:
		if !r.settle(ctx, workCtx, committed, loadsDone) {
			return nil
		}
	}
	handedOff = true
	w.background.start()
	go func() {
		defer w.background.done()
		defer release()
		if whole {
			done := r.settle(ctx, workCtx, committed, loadsDone)
			<-w.finishing
			if !done {
				return
			}
		}
		stopHeartbeat()
		r.lastReport(ctx)
	}()
	return nil
}

// settle waits for a batch's second stage, and says whether the batch is to be reported done.
// Stopped by the worker's shutdown, the batch is handed back; stopped by the server (cancel,
// lease lost), what is done is reported.
func (r *batchRun) settle(ctx, workCtx context.Context, committed, loadsDone <-chan struct{}) (done bool) {
	<-committed
	<-loadsDone // it took every group, or the work was stopped
	cause := context.Cause(workCtx)
	switch {
	case cause == nil:
		return true
	case ctx.Err() != nil:
		// The worker is shutting down: report what is done and hand the batch back.
		_ = r.giveBack(ctx, cause)
	default:
		r.log.InfoContext(ctx, "batch stopped", "reason", cause)
		_ = r.rep.flush(context.WithoutCancel(ctx), false)
	}
	return false
}

// lastReport sends a finished batch's last results and marks it done (the server then finishes
// it, and its job when it was the last), once its heartbeat stopped, so that the heartbeat sends
// nothing after it. It runs in the background: the slot has taken its next batch meanwhile, and a
// worker stopping waits for it (WaitBatches). It has the lease's length to get through; after
// that the lease has run out anyway, and the batch goes to another worker, which finds the
// results reported so far.
func (r *batchRun) lastReport(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.w.cfg.Lease)
	defer cancel()
	if err := r.rep.flush(ctx, true); err != nil {
		r.log.WarnContext(ctx, "could not report the finished batch; its lease will expire and another worker will finish it", "err", err)
	}
}

// WaitBatches returns once what the worker's batches left to the background is over (a second
// stage and a last report, or a last report; each report sent or failed), or when ctx ends. A
// worker's process waits for it after its consumer stopped, so that no batch waits for its lease
// to run out.
func (w *Worker) WaitBatches(ctx context.Context) error {
	w.background.mu.Lock()
	idle := w.background.idle
	w.background.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("worker: batches still finishing: %w", ctx.Err())
	}
}

// inFlight counts work under way. Unlike a sync.WaitGroup, it may be waited for while more
// starts (a handler that outlived its consumer's stop may still finish its batch).
type inFlight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is 0
}

func newInFlight() *inFlight {
	idle := make(chan struct{})
	close(idle)
	return &inFlight{idle: idle}
}

func (f *inFlight) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		close(f.idle)
	}
}

// giveBack reports finished results, releases the batch and enqueues it again, so another
// worker continues at once rather than after the lease runs out.
func (r *batchRun) giveBack(ctx context.Context, why error) error {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = r.rep.flush(bg, false)
	r.log.InfoContext(bg, "handing batch back", "reason", why)
	b, err := r.w.deps.Jobs.ReleaseBatch(bg, r.b.ID, r.w.cfg.ID)
	if err != nil {
		return nil // lost the lease already: someone else has it
	}
	if _, err := r.w.deps.Jobs.EnqueueBatch(bg, b); err != nil {
		r.log.WarnContext(bg, "re-enqueue failed; the reconciler will", "err", err)
	}
	return nil
}

// commitLoop is a batch's second stage: it takes the prepared documents that are ready (the
// first it waits for, up to commitGroup with it), stores their vectors in one write, records
// their index states in one statement and reports each result. A group is only what is ready:
// no document waits for a slower one, so progress stays as live as the work. CancelJob is
// honoured between groups, except before the first, whose status the claim just read: a group
// that wrote index states read the job's status in that same statement, after its work;
// otherwise it is read here, the status column alone. A cancel seen there stops the work before
// the next group stores anything or is reported (the documents prepared meanwhile are dropped).
// Reading the status once per report interval instead let documents run after a cancel that
// came within that interval. After an interruption it drains the rest unreported.
func (r *batchRun) commitLoop(workCtx context.Context, stop context.CancelCauseFunc, tasks <-chan *docTask, waiting *semaphore.Weighted) {
	w := r.w
	// The job's status as the previous group's index state write read it; "" when that group
	// wrote none (skipped, failed) or the job was gone, and then it is read alone.
	var seen jobs.Status
	first := true
	for t := range tasks {
		// Checked before more is taken from tasks, which would let the first stage go on.
		if !first && workCtx.Err() == nil && seen == "" {
			if st, err := w.deps.Jobs.Status(workCtx, r.b.JobID); err == nil && st.Terminal() {
				stop(fmt.Errorf("job is %s", st))
			}
		}
		first = false
		group := append(make([]*docTask, 0, commitGroup), t)
	more:
		for len(group) < commitGroup {
			select {
			case t, ok := <-tasks:
				if !ok {
					break more
				}
				group = append(group, t)
			default:
				break more
			}
		}
		done := workCtx.Err() == nil
		if done {
			seen = w.storeGroup(r.job, group)
		}
		var held int64
		for _, t := range group {
			held += t.held
			var res *pipelinev1.DocumentResult
			if done {
				res = w.result(t, r.log)
			}
			// Interrupted mid-document (cancel, lease lost, shutdown) without a final outcome:
			// not finished, not reported, not counted; whoever takes the batch next does it.
			// Decided once here, for the report, the registry and the metrics alike.
			interrupted := workCtx.Err() != nil && !final(res)
			t.obs.finish(res, interrupted)
			if interrupted {
				continue
			}
			r.rep.add(res)
			if a := w.deps.Activity; a != nil {
				a.DocumentDone(res.GetStatus() == pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED)
			}
		}
		waiting.Release(held)
		// A cancel read by the group's write stops the first stage at once (after the group's
		// own results, which it does not interrupt).
		if done && seen.Terminal() {
			stop(fmt.Errorf("job is %s", seen))
		}
		r.rep.flushIfDue(workCtx)
	}
}

// commitGroup bounds how many prepared documents commitLoop stores and records together.
const commitGroup = 32

// handOff is how many prepared documents wait for commitLoop at most, besides the one the first
// stage holds; handOffChunks bounds their chunks (vectors and text held in memory: with
// 1,536-dimension vectors and 1,000-token chunks, about 5 MB a batch). A deep hand-off lets the
// second stage, when it is the slower, take larger groups: one store sync and one index state
// write for up to commitGroup documents, and it absorbs the second stage's slow moments (a
// sync, a Postgres round trip on a busy machine) instead of stopping the first stage (decisions
// 0027, 0032: 1 -> 7 took one worker's documents/s from about 1,550 to 2,300, 7 -> 63 with
// groups of 32 up to a further 20%). What a cancel wastes stays small because the worker hears
// of it at once (ListenForEnds): the document being embedded is interrupted, the prepared ones
// are dropped and no other starts. Without that notice (the listener away) the cancel is read
// with the next group's index state write, and up to 2*(handOff+1) documents may be embedded
// after it; the first stage runs that far ahead only when it is the faster one (a cheap
// embedder), when that costs little.
const (
	handOff       = 63
	handOffChunks = 512
)

// final says a result is an outcome even when the work was interrupted: the document was
// indexed, or needed no work.
func final(res *pipelinev1.DocumentResult) bool {
	switch res.GetStatus() {
	case pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED,
		pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED:
		return true
	}
	return false
}

// A batch's documents are read from Postgres in groups, one statement each: loadGroupDocs
// documents at most, and no more after one brings the group's content to loadGroupBytes (so at
// most three groups, the one being read, the one waiting and the one in hand, hold large
// documents in memory). Groups of 32 rather than 8 took the end-to-end benchmark's one worker
// from about 3,100 to 3,400 documents/s (docs/performance.md): fewer statements, each planned
// and sent once for more documents.
const (
	loadGroupDocs  = 32
	loadGroupBytes = 4 << 20
)

// docWork is what index is given about a document read with its group, and what it tells back.
type docWork struct {
	// doc is the document; nil: index reads it.
	doc *content.Document
	// state is its index state when stateRead (ok: it has one); otherwise index reads it.
	state     content.IndexState
	ok        bool
	stateRead bool

	// jobStatus is the job's status as read by the document's index state write; "" when none
	// was written or the job is gone.
	jobStatus jobs.Status
	// redone counts the times index started again because the document's content changed
	// while it worked (see index).
	redone int
}

// maxRedo bounds how often one document is indexed again because its content kept changing
// while it was indexed.
const maxRedo = 3

// loadedGroup is what loadGroup read: the documents it found, by id, among the first covered
// ids it was given.
type loadedGroup struct {
	docs    map[uuid.UUID]*docWork
	covered int
}

// loadGroup reads the next documents of a batch with their index states, in one statement for
// the whole group, sparing two per document; the group may end before ids do (loadGroupBytes).
// A document of the group it did not find, or all of them when the read failed, is read again
// alone by index, which then records that document's own error.
func (w *Worker) loadGroup(ctx context.Context, ids []uuid.UUID) loadedGroup {
	if len(ids) < 2 {
		return loadedGroup{covered: len(ids)}
	}
	docs, states, covered, err := w.deps.Content.GetDocumentsWithStates(ctx, ids, loadGroupBytes)
	if err != nil || covered < 1 {
		return loadedGroup{covered: len(ids)}
	}
	out := make(map[uuid.UUID]*docWork, len(docs))
	for _, d := range docs {
		id, perr := uuid.Parse(d.ID)
		if perr != nil {
			continue
		}
		in := &docWork{doc: d, stateRead: true}
		in.state, in.ok = states[d.ID]
		out[id] = in
	}
	return loadedGroup{docs: out, covered: covered}
}

// docTask is one document between its two stages: what prepare made of it, or why it stopped.
type docTask struct {
	docID uuid.UUID
	in    *docWork
	ctx   context.Context // the document's (its span), under the batch's work context
	obs   *docObserver
	p     *prepared
	// The outcome: chunks stored, the most tries a step took, and why it failed or was skipped.
	chunks   int
	attempts int
	err      error
	// held is the share of the hand-off's chunk budget the document holds while it waits.
	held int64
}

// chunkCount is how many chunks the document's first stage made (0 when it made none).
func (t *docTask) chunkCount() int {
	if t.p == nil {
		return 0
	}
	return len(t.p.records)
}

// prepareDocument is a document's first stage (load, chunk, embed), with what in holds about it,
// read with its group.
func (w *Worker) prepareDocument(ctx context.Context, docID uuid.UUID, in *docWork) *docTask {
	ctx, obs := w.startDocument(ctx, docID.String())
	p, attempts, err := w.prepare(ctx, docID, in, obs)
	return &docTask{docID: docID, in: in, ctx: ctx, obs: obs, p: p, attempts: attempts, err: err}
}

// result is a document's result from its task's outcome.
func (w *Worker) result(t *docTask, log *slog.Logger) *pipelinev1.DocumentResult {
	chunks, attempts, err := t.chunks, t.attempts, t.err
	res := &pipelinev1.DocumentResult{DocumentId: t.docID.String(), Attempts: int32(attempts)}
	if err == nil {
		res.Status = pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED
		res.ChunkCount = int64(chunks)
		return res
	}
	var skip skipped
	if errors.As(err, &skip) {
		res.Status = pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED
		res.ChunkCount = skip.chunks
		return res
	}
	res.Status = pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED
	res.LastError = truncate(err.Error(), 2000)
	res.ErrorKind = pipelinev1.ErrorKind_ERROR_KIND_PERMANENT
	if transient, _ := errs.IsTransient(err); transient {
		res.ErrorKind = pipelinev1.ErrorKind_ERROR_KIND_TRANSIENT
	}
	log.WarnContext(t.ctx, "document failed", "document_id", t.docID, "attempts", attempts, "kind", res.ErrorKind, "err", err)
	return res
}

// skipped says a document needs no work: its vectors were built from the same content with the
// same settings.
type skipped struct{ chunks int64 }

func (skipped) Error() string { return "unchanged" }

// index does the work for one document and returns how many chunks it stored and how many
// tries the slowest step took. in holds what the caller read already, and gets the job status
// the index state write read.
func (w *Worker) index(ctx context.Context, job *jobs.Job, docID uuid.UUID, in *docWork, obs *docObserver) (int, int, error) {
	p, attempts, err := w.prepare(ctx, docID, in, obs)
	if err != nil {
		return 0, attempts, err
	}
	t := &docTask{docID: docID, in: in, ctx: ctx, obs: obs, p: p, attempts: attempts}
	w.storeGroup(job, []*docTask{t})
	return t.chunks, t.attempts, t.err
}

// prepared is a document's work before anything of it is stored: its chunks, embedded.
type prepared struct {
	doc     *content.Document
	records []vector.Record
}

// prepare loads, chunks and embeds one document (the stages without side effects) and returns
// how many tries the slowest step took; an error skipped says it needs no work.
func (w *Worker) prepare(ctx context.Context, docID uuid.UUID, in *docWork, obs *docObserver) (*prepared, int, error) {
	attempts := 1
	doc := in.doc
	lctx, endLoad := obs.stage(ctx, metrics.StageLoad)
	if doc == nil {
		var docs []*content.Document
		n, err := w.cfg.Retry.Do(lctx, func(ctx context.Context) error {
			var err error
			docs, err = w.deps.Content.GetDocumentsByIDs(ctx, &content.GetDocumentsByIDsParams{IDs: []string{docID.String()}})
			return transientIfUnavailable(err)
		})
		endLoad(err)
		attempts = max(attempts, n)
		if err != nil {
			return nil, attempts, fmt.Errorf("load document: %w", err)
		}
		if len(docs) == 0 {
			return nil, attempts, errors.New("document not found: it was deleted")
		}
		doc = docs[0]
	} else {
		endLoad(nil) // read with its group
	}
	obs.contentType = string(doc.ContentType)

	// Index state reads and writes are retried when Postgres is unavailable (a restart breaks
	// connections mid-query; the content store says Unavailable); the upsert is idempotent.
	state, ok := in.state, in.ok
	if !in.stateRead {
		n, err := w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			state, ok, err = w.deps.Content.GetIndexState(ctx, doc.ID)
			return transientIfUnavailable(err)
		})
		attempts = max(attempts, n)
		if err != nil {
			return nil, attempts, fmt.Errorf("read index state: %w", err)
		}
	}
	if in.redone == 0 && ok && state.ContentHash == doc.ContentHash && state.Fingerprint == w.fingerprint {
		// Unchanged, provided the store still holds its chunks (a vector store can be emptied or
		// replaced behind Postgres's back).
		n, err := w.deps.Vectors.Count(ctx, vector.Filter{DocumentIDs: []string{doc.ID}})
		if err == nil && int64(n) == state.ChunkCount {
			return nil, attempts, skipped{chunks: state.ChunkCount}
		}
	}

	text, title := doc.Content, doc.Title
	if doc.ContentType == content.ContentTypeHTML {
		_, endConvert := obs.stage(ctx, metrics.StageConvert)
		md, err := htmlmd.Convert(doc.Content, htmlmd.Options{})
		endConvert(err)
		if err != nil {
			return nil, attempts, fmt.Errorf("convert HTML: %w", err)
		}
		text, title = md.Markdown, cmp.Or(title, md.Title)
	}
	title = cmp.Or(title, doc.URI)
	_, endChunk := obs.stage(ctx, metrics.StageChunk)
	chunks := w.deps.Chunker.Split(text)
	endChunk(nil)

	records := make([]vector.Record, len(chunks))
	for i, c := range chunks {
		records[i] = vector.Record{
			ID:          vector.ChunkID(doc.ID, i),
			SourceID:    doc.SourceID,
			DocumentID:  doc.ID,
			ChunkIndex:  i,
			Text:        c.Text,
			Title:       title,
			URI:         doc.URI,
			HeadingPath: strings.Join(c.HeadingPath, " > "),
			StartOffset: int64(c.Start),
			EndOffset:   int64(c.End),
		}
	}
	ectx, endEmbed := obs.stage(ctx, metrics.StageEmbed)
	n, err := w.embed(ectx, chunks, records)
	endEmbed(err)
	attempts = max(attempts, n)
	if err != nil {
		return nil, attempts, err
	}
	return &prepared{doc: doc, records: records}, attempts, nil
}

// storeGroup writes the vectors of the group's prepared documents (at once: they share the
// store's sync), then their index states in one statement, and sets each task's outcome; a task
// that failed or was skipped before keeps its outcome. It returns the job's status as that
// statement read it ("" when it wrote nothing). A document whose content changed meanwhile is
// indexed again from its current content. The index state statement runs under the first
// document's context (its span).
func (w *Worker) storeGroup(job *jobs.Job, group []*docTask) jobs.Status {
	todo := make([]*docTask, 0, len(group))
	for _, t := range group {
		if t.err == nil {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return ""
	}
	ctx := todo[0].ctx
	// Each document's store calls run under its own store stage (its span).
	sctxs := make([]context.Context, len(todo))
	ends := make([]func(error), len(todo))
	for i, t := range todo {
		sctxs[i], ends[i] = t.obs.stage(t.ctx, metrics.StageStore)
	}
	// Deterministic ids: upserting overwrites an earlier run's chunks; then the chunks beyond the
	// new count go. One upsert per document, the group's made at once as one vector.WriteGroup:
	// the embedded store's group commit makes them durable with one sync, and a document stays
	// one write for the store (its metrics, Milvus's request sizes). A document listed twice is
	// written in order instead.
	storeDoc := func(ctx context.Context, t *docTask, g *vector.WriteGroup) error {
		if len(t.p.records) > 0 {
			if err := w.deps.Vectors.Upsert(g.Context(ctx), t.p.records); err != nil {
				return err
			}
		}
		return w.deps.Vectors.DeleteDocument(ctx, t.p.doc.ID, len(t.p.records))
	}
	n, err := w.cfg.Retry.Do(sctxs[0], func(context.Context) error {
		if len(todo) == 1 || !distinctDocuments(todo) {
			for i, t := range todo {
				if err := storeDoc(sctxs[i], t, nil); err != nil {
					return err
				}
			}
			return nil
		}
		upserts := 0
		for _, t := range todo {
			if len(t.p.records) > 0 {
				upserts++
			}
		}
		g := vector.NewWriteGroup(upserts)
		failed := make([]error, len(todo))
		var wg sync.WaitGroup
		last := len(todo) - 1 // stored by this goroutine, which would only wait otherwise
		for i, t := range todo[:last] {
			wg.Go(func() { failed[i] = storeDoc(sctxs[i], t, g) })
		}
		failed[last] = storeDoc(sctxs[last], todo[last], g)
		wg.Wait()
		return errors.Join(failed...)
	})
	for i, t := range todo {
		ends[i](err)
		t.attempts = max(t.attempts, n)
	}
	if err != nil && len(todo) > 1 && ctx.Err() == nil {
		// What the store refused may be one document's: each on its own, so the others go in.
		var status jobs.Status
		for _, t := range todo {
			status = cmp.Or(w.storeGroup(job, []*docTask{t}), status)
		}
		return status
	}
	if err != nil {
		for _, t := range todo {
			t.err = fmt.Errorf("store vectors: %w", err)
		}
		return ""
	}
	// The write commits asynchronously (content.PutIndexStates): lost in a Postgres crash, it
	// only costs these documents' work again, under the same chunk ids.
	states := make([]content.IndexState, len(todo))
	for i, t := range todo {
		states[i] = content.IndexState{
			DocumentID: t.p.doc.ID, ContentHash: t.p.doc.ContentHash, Fingerprint: w.fingerprint, ChunkCount: int64(len(t.p.records)),
		}
	}
	var written map[string]bool
	var status jobs.Status
	n, err = w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		done, st, err := w.deps.Content.PutIndexStates(ctx, states, job.ID)
		written, status = done, jobs.Status(st)
		return transientIfUnavailable(err)
	})
	for _, t := range todo {
		t.attempts = max(t.attempts, n)
		t.in.jobStatus = status
		switch {
		case err != nil:
			t.err = fmt.Errorf("record index state: %w", err)
		case written[t.p.doc.ID]:
			t.chunks = len(t.p.records)
		default:
			t.chunks, t.attempts, t.err = w.redo(job, t)
		}
	}
	return status
}

// distinctDocuments reports whether no document appears twice among the tasks.
func distinctDocuments(tasks []*docTask) bool {
	for i, t := range tasks {
		for _, u := range tasks[:i] {
			if u.p.doc.ID == t.p.doc.ID {
				return false
			}
		}
	}
	return true
}

// redo handles a document whose index state was refused: deleted, or changed, while we worked.
// New content arrived: another worker may already have stored its vectors under the same chunk
// ids, which ours just overwrote, and recorded its state (which a skip check would trust). So it
// is indexed again from its current content, without the skip check. A deleted document (and
// source) gets our vectors taken back out.
func (w *Worker) redo(job *jobs.Job, t *docTask) (int, int, error) {
	ctx, in, doc, attempts := t.ctx, t.in, t.p.doc, t.attempts
	var now []*content.Document
	_, err := w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		var err error
		now, err = w.deps.Content.GetDocumentsByIDs(ctx, &content.GetDocumentsByIDsParams{IDs: []string{doc.ID}})
		return transientIfUnavailable(err)
	})
	if err != nil {
		return 0, attempts, fmt.Errorf("load document: %w", err)
	}
	if len(now) > 0 {
		if in.redone >= maxRedo {
			return 0, attempts, fmt.Errorf("the document's content changed %d times while it was indexed", in.redone+1)
		}
		in.doc, in.stateRead, in.redone = now[0], true, in.redone+1
		return w.index(ctx, job, t.docID, in, t.obs)
	}
	if err := w.deps.Vectors.DeleteDocument(context.WithoutCancel(ctx), doc.ID, 0); err != nil {
		w.log.WarnContext(ctx, "remove vectors of a deleted document", "document_id", doc.ID, "err", err)
	}
	return 0, attempts, errors.New("document not found: it was deleted while processing")
}

// embed fills in the records' vectors, EmbedBatchSize chunks per call, and returns how many
// tries the slowest call took.
func (w *Worker) embed(ctx context.Context, chunks []chunk.Chunk, records []vector.Record) (int, error) {
	attempts := 1
	for start := 0; start < len(chunks); start += w.cfg.EmbedBatchSize {
		end := min(start+w.cfg.EmbedBatchSize, len(chunks))
		texts := make([]string, 0, end-start)
		for _, c := range chunks[start:end] {
			texts = append(texts, c.Text)
		}
		var vecs [][]float32
		n, err := w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			vecs, err = w.deps.Embedder.Embed(ctx, texts)
			return err
		})
		attempts = max(attempts, n)
		if err != nil {
			return attempts, fmt.Errorf("embed: %w", err)
		}
		if len(vecs) != len(texts) {
			return attempts, fmt.Errorf("embed: %d vectors for %d texts", len(vecs), len(texts))
		}
		for i, v := range vecs {
			records[start+i].Vector = v
		}
	}
	return attempts, nil
}

// transientIfUnavailable marks database unavailability as transient.
func transientIfUnavailable(err error) error {
	if err != nil && errors.Is(err, errs.ErrUnavailable) {
		return errs.Transient(err, 0)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// reporter sends a batch's results to the server over one ReportProgress stream, reopening it
// when it breaks (server restart). Sends are serialised (sendMu): a gRPC stream is not safe for
// concurrent Send. Results are added under mu alone, so the commit stage never waits for a
// report's round trip: flushIfDue sends in the background.
type reporter struct {
	w    *Worker
	b    *jobs.Batch
	stop context.CancelCauseFunc

	// sendMu is held for a whole report (round trip and retries), and guards stream and cancel.
	sendMu sync.Mutex
	stream pipelinev1.WorkerService_ReportProgressClient
	cancel context.CancelFunc

	mu        sync.Mutex // guards pending, lastFlush and sending
	pending   []*pipelinev1.DocumentResult
	lastFlush time.Time
	sending   bool // a background flush is under way
	async     sync.WaitGroup
}

func newReporter(w *Worker, b *jobs.Batch, stop context.CancelCauseFunc) *reporter {
	return &reporter{w: w, b: b, stop: stop, lastFlush: time.Now()}
}

func (r *reporter) add(res *pipelinev1.DocumentResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, res)
}

// flushIfDue starts sending the pending results in the background when the oldest has waited a
// report interval (or 100 are waiting) and no background send is under way. A failed send stops
// the batch's work.
func (r *reporter) flushIfDue(ctx context.Context) {
	r.mu.Lock()
	due := !r.sending && len(r.pending) > 0 && (time.Since(r.lastFlush) >= r.w.cfg.ReportInterval || len(r.pending) >= 100)
	if due {
		r.sending = true
	}
	r.mu.Unlock()
	if !due {
		return
	}
	r.async.Go(func() {
		err := r.flush(ctx, false)
		r.mu.Lock()
		r.sending = false
		r.mu.Unlock()
		if err != nil {
			r.stop(fmt.Errorf("report progress: %w", err))
		}
	})
}

// heartbeat runs until ctx ends: it sends the results that have waited a report interval (the
// commit stage sends them after each group, but a slow document holds up the next group, and
// those before it must not wait for it), and renews the lease with an empty report when nothing
// was sent for every.
func (r *reporter) heartbeat(ctx context.Context, every time.Duration) {
	t := time.NewTicker(min(every, r.w.cfg.ReportInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.mu.Lock()
			idle := time.Since(r.lastFlush) >= every
			r.mu.Unlock()
			if !idle {
				r.flushIfDue(ctx)
				continue
			}
			if err := r.flush(ctx, false); err != nil && ctx.Err() == nil {
				r.w.log.WarnContext(ctx, "heartbeat failed", "batch_id", r.b.ID, "err", err)
			}
		}
	}
}

// flush sends the pending results (possibly none: a heartbeat), marking the batch done when
// asked, and applies the server's answer: stop means stop. It waits for a send under way, so
// results go in the order they were added; results it could not send stay pending, ahead of
// those added meanwhile.
func (r *reporter) flush(ctx context.Context, batchDone bool) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	results := r.pending
	r.pending = nil
	r.mu.Unlock()
	req := &pipelinev1.ReportProgressRequest{
		WorkerId:  r.w.cfg.ID,
		JobId:     r.b.JobID.String(),
		BatchId:   r.b.ID.String(),
		Results:   results,
		BatchDone: batchDone,
	}
	var resp *pipelinev1.ReportProgressResponse
	_, err := r.w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = r.roundTrip(ctx, req)
		return err
	})
	r.mu.Lock()
	if err != nil {
		r.pending = append(results, r.pending...)
	} else {
		r.lastFlush = time.Now()
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if resp.GetStop() {
		r.stop(errors.New(cmp.Or(resp.GetStopReason(), "the server said stop")))
	}
	return nil
}

// roundTrip sends one report and reads its acknowledgement, opening a stream when needed.
// Errors that a new stream may cure are transient.
func (r *reporter) roundTrip(ctx context.Context, req *pipelinev1.ReportProgressRequest) (*pipelinev1.ReportProgressResponse, error) {
	if r.stream == nil {
		// The stream outlives any one call's ctx; close() ends it.
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s, err := r.w.deps.Reporter.ReportProgress(sctx)
		if err != nil {
			cancel()
			return nil, errs.Transient(err, 0)
		}
		r.stream, r.cancel = s, cancel
	}
	err := r.stream.Send(req)
	var resp *pipelinev1.ReportProgressResponse
	if err == nil {
		resp, err = r.stream.Recv()
	}
	if err != nil {
		r.cancel()
		r.stream, r.cancel = nil, nil
		switch status.Code(err) {
		case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.NotFound:
			return nil, err
		}
		return nil, errs.Transient(err, 0)
	}
	return resp, nil
}

func (r *reporter) close() {
	r.async.Wait()
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.stream != nil {
		_ = r.stream.CloseSend()
		r.cancel()
		r.stream, r.cancel = nil, nil
	}
}
