package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// endedChannel is the Postgres channel on which the jobs that end under their workers are named
// (cancelled, failed, deleted: migration 00009's trigger), one job id a notification.
const endedChannel = "pipeline_job_ended"

// errJobEnded is why a batch stops when its job's end is heard on endedChannel.
var errJobEnded = errors.New("the job ended (cancelled, failed or deleted)")

// jobEnds hands the ends heard on endedChannel to the batches working on those jobs.
type jobEnds struct {
	mu   sync.Mutex
	runs map[uuid.UUID]map[*context.CancelCauseFunc]struct{}
}

// watch stops a batch of jobID (stop) when the job's end is heard, until unwatch is called.
func (e *jobEnds) watch(jobID uuid.UUID, stop context.CancelCauseFunc) (unwatch func()) {
	key := &stop
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runs == nil {
		e.runs = make(map[uuid.UUID]map[*context.CancelCauseFunc]struct{})
	}
	set := e.runs[jobID]
	if set == nil {
		set = make(map[*context.CancelCauseFunc]struct{})
		e.runs[jobID] = set
	}
	set[key] = struct{}{}
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(set, key)
		if len(set) == 0 {
			delete(e.runs, jobID)
		}
	}
}

// ended stops the batches of jobID.
func (e *jobEnds) ended(jobID uuid.UUID, why error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for stop := range e.runs[jobID] {
		(*stop)(why)
	}
}

// jobs returns the jobs being watched.
func (e *jobEnds) jobs() []uuid.UUID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]uuid.UUID, 0, len(e.runs))
	for id := range e.runs {
		out = append(out, id)
	}
	return out
}

// ListenForEnds stops the worker's batches of a job that ends under them (CancelJob, a timeout,
// a delete) as soon as Postgres says so, so the worker starts no further document of it, until
// ctx ends. It holds a connection of its own (made with cfg) that listens on endedChannel. That
// is the fast path only: every group of documents a batch records also reads the job's status,
// so while this listener is away (Postgres restarting, the connection lost) a cancel is still
// honoured, a few documents later. After each (re)connection it reads the status of the jobs it
// works on, so an end that came while it was away stops them as well.
func (w *Worker) ListenForEnds(ctx context.Context, cfg *pgx.ConnConfig) {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	// How operators (and tests) find this connection in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = EndsListenerName(w.cfg.ID)
	backoff := endsMinBackoff
	for ctx.Err() == nil {
		err := w.listenForEnds(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		w.log.WarnContext(ctx, "not hearing ended jobs from Postgres; batches learn of a cancel with their next group of documents", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, endsMaxBackoff)
	}
}

// EndsListenerName is the application_name of worker id's ListenForEnds connection (Postgres
// keeps the first 63 bytes).
func EndsListenerName(id string) string { return "pipeline job ends " + id }

// The listener's reconnection backoff.
const (
	endsMinBackoff = 200 * time.Millisecond
	endsMaxBackoff = 10 * time.Second
)

// listenForEnds is one connection of ListenForEnds: it returns when the connection fails or ctx
// ends.
func (w *Worker) listenForEnds(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+endedChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Ends that came before this connection listened.
	for _, id := range w.ends.jobs() {
		switch st, err := w.deps.Jobs.Status(ctx, id); {
		case errors.Is(err, errs.ErrNotFound):
			w.ends.ended(id, errJobEnded)
		case err == nil && st.Terminal():
			w.ends.ended(id, fmt.Errorf("job is %s", st))
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, err := uuid.Parse(n.Payload); err == nil {
			w.ends.ended(id, errJobEnded)
		}
	}
}
