package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	redisv8 "github.com/go-redis/redis/v8"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/vmihailenco/taskq/v3"
	"github.com/vmihailenco/taskq/v3/redisq"
	"golang.org/x/sync/errgroup"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/queue"
)

// The job dispatch case (issue 7, case 4): N tiny jobs inserted, then drained by W workers that
// do nothing, through the project's job manager and queue and through three job queues:
// taskq (the library under internal/queue) and asynq on the same Redis, River on the same
// Postgres. Each run inserts all N jobs first (W inserters, one job per call, no bulk API:
// the project's API creates one job per request), then starts the consumer and waits for the
// last completion. Measured:
//
//   - insert jobs/s: N / (first insert call to last insert return);
//   - drain jobs/s: N / (consumer start to last completion), the target;
//   - total jobs/s: N / (insert time + drain time).
//
// A completion is the moment the job's state is recorded: the project's FinishBatch returned
// with the job COMPLETED in Postgres; River's completion event, sent once its completer has
// written the row; taskq's and asynq's handler returning (they acknowledge in Redis right
// after). Each run ends with a check that every job ran exactly once and none is left, and
// removes its jobs, so every run starts from an empty table and stream.
const (
	dispatchJobs      = 10000
	dispatchJobsShort = 1000
	// asynq's key names are fixed ("asynq:servers", "asynq:queues", ...), so it runs on a Redis
	// database of its own that the project's tests and services do not use (they use 0); only
	// its own queue's keys are deleted afterwards, never the database.
	dispatchAsynqDB = 9
)

var dispatchWorkers = []int{10, 50}

func init() {
	register(&Case{
		Name:    "dispatch",
		About:   "tiny jobs inserted then drained (claim, no-op, complete) at 10 and 50 workers: JobManager vs taskq, asynq, River",
		Primary: Metric{Name: "drain jobs/s", Format: "%.0f"},
		Summary: []Metric{{Name: "drain jobs/s", Format: "%.0f"}, {Name: "total jobs/s", Format: "%.0f"}},
		Columns: []Metric{{Name: "drain jobs/s", Format: "%.0f"}, {Name: "insert jobs/s", Format: "%.0f"},
			{Name: "total jobs/s", Format: "%.0f"}, {Name: cpuPerJob, Format: "%.3f"}, {Name: pgCPUPerJob, Format: "%.3f"},
			{Name: redisCPUPerJob, Format: "%.3f"}, {Name: "jobs", Format: "%.0f"}, {Name: "duplicates", Format: "%.0f"}},
		Prepare: prepareDispatch,
	})
}

// The drain's CPU per job: this process's (the consumer, and for the project the whole service
// around it), and the machine's Postgres and Redis processes' (proccpu.go).
const (
	cpuPerJob      = "CPU ms/job"
	pgCPUPerJob    = "PG CPU ms/job"
	redisCPUPerJob = "Redis CPU ms/job"
)

var dispatchCPUColumns = cpuColumns{self: cpuPerJob, postgres: pgCPUPerJob, redis: redisCPUPerJob}

// dispatcher is one queue under test at one worker count.
type dispatcher struct {
	name    string
	project bool
	workers int
	// insert adds job i (0 <= i < n) and is called from workers goroutines at once.
	insert func(ctx context.Context, i int) error
	// drain starts a consumer that reports each completed job to t, waits for t to be full and
	// stops the consumer.
	drain func(ctx context.Context, t *tally) error
	// check verifies what the queue's own store says after a run and removes the run's jobs.
	check func(ctx context.Context, n int) error
}

// tally records completions by job index.
type tally struct {
	n     int
	seen  []atomic.Int32
	done  atomic.Int64
	dups  atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the last first-time completion
	full  chan struct{}
	once  sync.Once
	wrong atomic.Int64 // completions of an index outside [0, n)
}

func newTally(n int) *tally {
	return &tally{n: n, seen: make([]atomic.Int32, n), full: make(chan struct{})}
}

func (t *tally) complete(i int) {
	if i < 0 || i >= t.n {
		t.wrong.Add(1)
		return
	}
	if t.seen[i].Add(1) > 1 {
		t.dups.Add(1)
		return
	}
	t.last.Store(time.Now().UnixNano())
	if t.done.Add(1) == int64(t.n) {
		t.once.Do(func() { close(t.full) })
	}
}

// wait returns when every job completed, or fails after timeout without progress.
func (t *tally) wait(ctx context.Context, timeout time.Duration) error {
	for {
		before := t.done.Load()
		select {
		case <-t.full:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(timeout):
			if t.done.Load() == before {
				return correctness("lost: %d of %d jobs completed, none for %s", before, t.n, timeout)
			}
		}
	}
}

// verify checks that every job completed exactly once.
func (t *tally) verify() error {
	if w := t.wrong.Load(); w > 0 {
		return correctness("%d completions of jobs never inserted", w)
	}
	if d := t.done.Load(); d != int64(t.n) {
		return correctness("%d of %d jobs completed", d, t.n)
	}
	return nil
}

// dispatchStall is how long a drain may go without a completion before the missing jobs count as lost.
const dispatchStall = 30 * time.Second

func (d *dispatcher) run(ctx context.Context, n int) (Sample, error) {
	t := newTally(n)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	t0 := time.Now()
	for range d.workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := d.insert(gctx, i); err != nil {
					return fmt.Errorf("insert job %d: %w", i, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	inserted := time.Since(t0)
	t1, cpu0 := time.Now(), readCPU()
	// The CPU the drain used is read as its last job completes, before the consumer stops.
	var cpu1 cpuReading
	drainEnded, read := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(read)
		select {
		case <-t.full:
		case <-drainEnded:
			select {
			case <-t.full: // both were ready: the drain is complete
			default:
				return
			}
		}
		cpu1 = readCPU()
	}()
	err := d.drain(ctx, t)
	close(drainEnded)
	<-read
	if err != nil {
		return nil, err
	}
	if err := t.verify(); err != nil {
		return nil, err
	}
	drained := time.Unix(0, t.last.Load()).Sub(t1)
	if err := d.check(ctx, n); err != nil {
		return nil, err
	}
	sample := Sample{
		"insert jobs/s": float64(n) / inserted.Seconds(),
		"drain jobs/s":  float64(n) / drained.Seconds(),
		"total jobs/s":  float64(n) / (inserted + drained).Seconds(),
		"jobs":          float64(n),
		"duplicates":    float64(t.dups.Load()),
	}
	cpu0.per(cpu1, n, dispatchCPUColumns, sample)
	return sample, nil
}

func (d *dispatcher) subject(n int) *Subject {
	s := &Subject{Name: fmt.Sprintf("%s, %d workers", d.name, d.workers), Project: d.project}
	s.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		sample, err := d.run(ctx, n)
		if err == nil && warmup {
			s.Quality = map[string]float64{"jobs": sample["jobs"], "duplicates": sample["duplicates"]}
		}
		return sample, err
	}
	return s
}

func prepareDispatch(ctx context.Context, env *Env) (p *Prepared, err error) {
	n := dispatchJobs
	if env.Short {
		n = dispatchJobsShort
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	srv, err := startServer(ctx, env.Dir, func(c *config.Config) {
		// Every job through the one lane whose consumer runs W workers: a lane of express slots
		// for small jobs (where the configuration has one) would put these tiny jobs on a few
		// slots of their own, which is not what a dispatch rate at W workers measures. Set by
		// name, so the case builds with or without that setting.
		cerr := c.LoadEnv(func(k string) (string, bool) {
			return "0", k == config.EnvName("express-max-documents")
		})
		if cerr != nil {
			panic(cerr)
		}
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, srv.Close)
	proj, err := newProjectDispatch(ctx, srv)
	if err != nil {
		return nil, err
	}
	tq, err := newTaskqDispatch(srv)
	if err != nil {
		return nil, err
	}
	closers = append(closers, tq.close)
	aq, err := newAsynqDispatch(srv)
	if err != nil {
		return nil, err
	}
	closers = append(closers, aq.close)
	rv, err := newRiverDispatch(ctx)
	if err != nil {
		return nil, err
	}
	closers = append(closers, rv.close)

	p = &Prepared{
		Input: fmt.Sprintf("%d jobs per run, each inserted by one call from as many inserters as workers, then drained by 10 or 50 workers", n),
		Notes: []string{
			"insert jobs/s: all jobs inserted, one call per job, W callers; drain jobs/s: consumer start to the last completion (the issue's target); total jobs/s: jobs / (insert time + drain time)",
			"project: jobs.Manager.Create (job row, one tiny document, its batch, the taskq message, as IngestDocuments does) through the real app (app.Build) on its own schema and Redis prefix; a consumer from internal/queue with the project's taskq settings claims each batch (ClaimBatch), does nothing and finishes it (FinishBatch: job COMPLETED) while its slot goes on to the next message, as the worker's last report does. Completion: FinishBatch returned the job COMPLETED; the check reads every job and batch back from Postgres (completed, claimed once)",
			"taskq v3: the settings internal/queue uses (fixed pool of W, ReservationSize 1, BufferSize 1, one fetcher), own queue name; asynq: Concurrency W, own queue on Redis database 9; River: MaxWorkers W, FetchCooldown 1 ms (its minimum; the default 100 ms caps a drain at W jobs per 100 ms), its own schema (rivermigrate); River's completion is its completion event (sent after the row is written), taskq's and asynq's the handler's return",
			"CPU ms/job, over the drain (its start to the last completion): this process's CPU time (the consumer; for the project also the service around it, as app.Build runs it) per job; PG and Redis CPU ms/job: the machine's Postgres processes' (every backend, the WAL writer, the checkpointer) and Redis's, from /proc in 10 ms ticks; asynq's Redis counts, as it is the same server",
			"Postgres pools: the project's default (pgx: max(4, CPUs) connections) for both the project and River",
		},
		Close: closeAll,
	}
	for _, w := range dispatchWorkers {
		subs := []*Subject{proj.at(w).subject(n), tq.at(w).subject(n), aq.at(w).subject(n), rv.at(w).subject(n)}
		p.Subjects = append(p.Subjects, subs...)
		for _, peer := range subs[1:] {
			p.Compare = append(p.Compare, [2]string{subs[0].Name, peer.Name})
		}
	}
	env.Logf("dispatch: %d jobs per run, subjects ready", n)
	return p, nil
}

// --- the project ---

type projectDispatch struct {
	srv      *liveServer
	sourceID uuid.UUID
	docID    uuid.UUID
	jobIndex sync.Map // job id -> index in the run
	cfg      config.Config
}

func newProjectDispatch(ctx context.Context, srv *liveServer) (*projectDispatch, error) {
	src, err := srv.Deps.Content.CreateSource(ctx, &content.CreateSourceParams{Name: "bench-dispatch"})
	if err != nil {
		return nil, fmt.Errorf("create source: %w", err)
	}
	docs, err := srv.Deps.Content.UpsertDocuments(ctx, &content.UpsertDocumentsParams{
		SourceID: src.ID, Documents: []content.DocumentInput{{URI: "tiny.md", Content: "# Tiny\n\nA tiny document."}},
	})
	if err != nil {
		return nil, fmt.Errorf("store the document: %w", err)
	}
	p := &projectDispatch{srv: srv, cfg: srv.app.Cfg}
	if p.sourceID, err = uuid.Parse(src.ID); err != nil {
		return nil, err
	}
	if p.docID, err = uuid.Parse(docs[0].Document.ID); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *projectDispatch) at(workers int) *dispatcher {
	mgr := p.srv.Deps.Jobs
	return &dispatcher{
		name: "project JobManager", project: true, workers: workers,
		insert: func(ctx context.Context, i int) error {
			job, err := mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: p.sourceID, DocumentIDs: []uuid.UUID{p.docID}})
			if err != nil {
				return err
			}
			if job.QueueMessageID == "" {
				return fmt.Errorf("job %s was not enqueued", job.ID)
			}
			p.jobIndex.Store(job.ID, i)
			return nil
		},
		drain: func(ctx context.Context, t *tally) error {
			return p.drain(ctx, workers, t)
		},
		check: p.check,
	}
}

// drain runs a consumer as `pipeline worker` opens one (internal/app), whose handler claims,
// does nothing and finishes. As in the worker (docs/decisions/0030), the slot takes its next
// message once the batch is claimed and its work done; the finish goes on in the background,
// and the job counts as completed when FinishBatch returns it so.
func (p *projectDispatch) drain(ctx context.Context, workers int, t *tally) error {
	q, err := queue.Open(queue.Config{
		RedisURL: p.cfg.RedisURL, Prefix: p.cfg.RedisPrefix, Workers: workers, Logger: p.srv.app.Log,
		ReservationTimeout: max(2*p.cfg.Lease, 30*time.Second),
	}, p.srv.Redis)
	if err != nil {
		return err
	}
	defer q.Close()
	mgr := p.srv.Deps.Jobs
	workerID := "bench-dispatch-" + strconv.Itoa(workers)
	var (
		failed    atomic.Pointer[error]
		finishing sync.WaitGroup
	)
	finish := func(ctx context.Context, b *jobs.Batch) {
		job, err := mgr.FinishBatch(ctx, b.ID, workerID)
		if err == nil && job.Status != jobs.StatusCompleted {
			err = correctness("job %s is %s after its only batch finished", job.ID, job.Status)
		}
		if err != nil {
			failed.Store(&err)
			return
		}
		i, ok := p.jobIndex.Load(job.ID)
		if !ok {
			i = -1
		}
		t.complete(i.(int))
	}
	handle := func(ctx context.Context, batchID uuid.UUID) error {
		b, _, err := mgr.ClaimBatch(ctx, batchID, workerID, p.cfg.Lease)
		if errors.Is(err, jobs.ErrNotClaimable) {
			return nil // a duplicate delivery: the claim makes it a no-op
		}
		if err != nil {
			return err
		}
		finishing.Go(func() { finish(context.WithoutCancel(ctx), b) })
		return nil
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- q.Consume(cctx, handle, 10*time.Second) }()
	werr := t.wait(ctx, dispatchStall)
	stop()
	if err := <-done; err != nil && werr == nil {
		werr = err
	}
	finishing.Wait()
	if f := failed.Load(); f != nil {
		return *f
	}
	return werr
}

// check reads the run's jobs and batches back: all completed, each batch done after one claim.
// Then it removes them (and their cached status in Redis) so the next run starts empty.
func (p *projectDispatch) check(ctx context.Context, n int) error {
	var ids []uuid.UUID
	p.jobIndex.Range(func(k, _ any) bool { ids = append(ids, k.(uuid.UUID)); return true })
	p.jobIndex.Clear()
	if len(ids) != n {
		return correctness("%d jobs created, want %d", len(ids), n)
	}
	var jobsN, completed, batches, doneOnce int
	err := p.srv.Deps.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE j.status = 'completed'),
		       (SELECT count(*) FROM job_batches b WHERE b.job_id = ANY ($1)),
		       (SELECT count(*) FROM job_batches b WHERE b.job_id = ANY ($1) AND b.state = 'done' AND b.claims = 1)
		FROM jobs j WHERE j.id = ANY ($1)`, ids).Scan(&jobsN, &completed, &batches, &doneOnce)
	if err != nil {
		return err
	}
	if jobsN != n || completed != n || batches != n || doneOnce != n {
		return correctness("in Postgres: %d jobs, %d completed, %d batches, %d done after one claim; want %d each", jobsN, completed, batches, doneOnce, n)
	}
	if _, err := p.srv.Deps.Pool.Exec(ctx, `DELETE FROM jobs WHERE id = ANY ($1)`, ids); err != nil {
		return err
	}
	if err := vacuum(ctx, p.srv.Deps.Pool, "jobs, job_documents, job_batches"); err != nil {
		return err
	}
	return deleteKeys(ctx, p.srv.Redis, p.srv.Prefix+"processing:*")
}

// vacuum clears the dead rows a run's DELETE left, so that the next run does not scan them
// (an index scan over the jobs of earlier runs slowed every run after the first).
func vacuum(ctx context.Context, pool *pgxpool.Pool, tables string) error {
	_, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+tables, pgx.QueryExecModeSimpleProtocol)
	return err
}

func deleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) error {
	_, err := countDeleteKeys(ctx, rdb, pattern)
	return err
}

// countDeleteKeys deletes the keys matching pattern, a thousand at a time, and says how many it
// deleted.
func countDeleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) (n int, err error) {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, batch...).Err()
		if err == nil {
			n += len(batch)
		}
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// --- taskq ---

type taskqDispatch struct {
	rdb    *redisv8.Client
	prefix string
	queues []taskq.Queue
}

func newTaskqDispatch(srv *liveServer) (*taskqDispatch, error) {
	opt, err := redisv8.ParseURL(benchRedisURL())
	if err != nil {
		return nil, err
	}
	return &taskqDispatch{rdb: redisv8.NewClient(opt), prefix: srv.Prefix}, nil
}

func (d *taskqDispatch) at(workers int) *dispatcher {
	var current atomic.Pointer[tally]
	tasks := &taskq.TaskMap{}
	task, err := tasks.Register(&taskq.TaskOptions{
		Name: "noop", RetryLimit: 5, MinBackoff: time.Second, MaxBackoff: time.Minute,
		Handler: func(i int) error { current.Load().complete(i); return nil },
	})
	if err != nil {
		panic(err) // a fresh map: registering one name cannot fail
	}
	// The options internal/queue gives taskq (queue.Open), on a queue of this run's own.
	q := redisq.NewFactory().RegisterQueue(&taskq.QueueOptions{
		Name:  d.prefix + "dispatch-taskq-" + strconv.Itoa(workers),
		Redis: d.rdb, Handler: tasks,
		MinNumWorker: int32(workers), MaxNumWorker: int32(workers), MaxNumFetcher: 1,
		ReservationSize: 1, BufferSize: 1, ReservationTimeout: 4 * time.Minute,
		WaitTimeout: time.Second, PauseErrorsThreshold: -1,
	})
	d.queues = append(d.queues, q)
	return &dispatcher{
		name: "taskq", workers: workers,
		insert: func(ctx context.Context, i int) error {
			return q.Add(task.WithArgs(ctx, i))
		},
		drain: func(ctx context.Context, t *tally) error {
			current.Store(t)
			c := q.Consumer()
			if err := c.Start(ctx); err != nil {
				return err
			}
			err := t.wait(ctx, dispatchStall)
			return errors.Join(err, c.Stop())
		},
		check: func(ctx context.Context, n int) error {
			left, err := q.Len()
			if err != nil {
				return err
			}
			if left != 0 {
				return correctness("taskq: %d messages left in the stream", left)
			}
			return nil
		},
	}
}

func (d *taskqDispatch) close() {
	for _, q := range d.queues {
		_ = q.Close()
	}
	ctx := context.Background()
	iter := d.rdb.Scan(ctx, 0, "taskq:{"+d.prefix+"dispatch-taskq-*", 1000).Iterator()
	for iter.Next(ctx) {
		d.rdb.Del(ctx, iter.Val())
	}
	_ = d.rdb.Close()
}

// --- asynq ---

type asynqDispatch struct {
	rdb    *redis.Client
	client *asynq.Client
	insp   *asynq.Inspector
	prefix string
	queues []string
}

func newAsynqDispatch(srv *liveServer) (*asynqDispatch, error) {
	opt, err := redis.ParseURL(benchRedisURL())
	if err != nil {
		return nil, err
	}
	opt.DB = dispatchAsynqDB
	rdb := redis.NewClient(opt)
	return &asynqDispatch{rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb),
		prefix: srv.Prefix}, nil
}

func (d *asynqDispatch) at(workers int) *dispatcher {
	qname := d.prefix + "dispatch-asynq-" + strconv.Itoa(workers)
	d.queues = append(d.queues, qname)
	return &dispatcher{
		name: "asynq", workers: workers,
		insert: func(ctx context.Context, i int) error {
			_, err := d.client.EnqueueContext(ctx, asynq.NewTask("noop", []byte(strconv.Itoa(i))), asynq.Queue(qname))
			return err
		},
		drain: func(ctx context.Context, t *tally) error {
			srv := asynq.NewServerFromRedisClient(d.rdb, asynq.Config{
				Concurrency: workers, Queues: map[string]int{qname: 1}, LogLevel: asynq.FatalLevel,
			})
			mux := asynq.NewServeMux()
			mux.HandleFunc("noop", func(_ context.Context, task *asynq.Task) error {
				i, err := strconv.Atoi(string(task.Payload()))
				if err != nil {
					i = -1
				}
				t.complete(i)
				return nil
			})
			if err := srv.Start(mux); err != nil {
				return err
			}
			err := t.wait(ctx, dispatchStall)
			srv.Shutdown()
			return err
		},
		check: func(ctx context.Context, n int) error {
			info, err := d.insp.GetQueueInfo(qname)
			if err != nil {
				return err
			}
			if left := info.Pending + info.Active + info.Scheduled + info.Retry + info.Archived; left != 0 {
				return correctness("asynq: %d tasks left (pending %d, active %d, retry %d, archived %d)",
					left, info.Pending, info.Active, info.Retry, info.Archived)
			}
			return nil
		},
	}
}

func (d *asynqDispatch) close() {
	for _, q := range d.queues {
		_ = d.insp.DeleteQueue(q, true)
		// DeleteQueue leaves the queue's processed and failed counters behind.
		_ = deleteKeys(context.Background(), d.rdb, "asynq:{"+q+"}*")
	}
	_ = d.client.Close()
	_ = d.rdb.Close()
}

// --- River ---

type riverArgs struct {
	I int `json:"i"`
}

func (riverArgs) Kind() string { return "bench_noop" }

type riverWorker struct {
	river.WorkerDefaults[riverArgs]
}

func (riverWorker) Work(context.Context, *river.Job[riverArgs]) error { return nil }

type riverDispatch struct {
	pool   *pgxpool.Pool
	schema string
	insert *river.Client[pgx.Tx]
}

func newRiverDispatch(ctx context.Context) (d *riverDispatch, err error) {
	d = &riverDispatch{schema: "bench_river_" + uuid.NewString()[:8]}
	if err := holdRunLock(ctx); err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, benchDatabaseURL())
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+d.schema); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	cfg, err := pgxpool.ParseConfig(benchDatabaseURL())
	if err != nil {
		return d, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = d.schema
	if d.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return d, err
	}
	driver := riverpgxv5.New(d.pool)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: d.schema})
	if err != nil {
		return d, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return d, fmt.Errorf("river migrate: %w", err)
	}
	// An insert-only client (no queues) for the insert phase.
	d.insert, err = river.NewClient(driver, &river.Config{Schema: d.schema})
	return d, err
}

func (d *riverDispatch) at(workers int) *dispatcher {
	qname := "dispatch_" + strconv.Itoa(workers)
	return &dispatcher{
		name: "River", workers: workers,
		insert: func(ctx context.Context, i int) error {
			_, err := d.insert.Insert(ctx, riverArgs{I: i}, &river.InsertOpts{Queue: qname})
			return err
		},
		drain: func(ctx context.Context, t *tally) error {
			ws := river.NewWorkers()
			river.AddWorker(ws, riverWorker{})
			c, err := river.NewClient(riverpgxv5.New(d.pool), &river.Config{
				Schema: d.schema, Queues: map[string]river.QueueConfig{qname: {MaxWorkers: workers}}, Workers: ws,
				Logger: slog.New(slog.DiscardHandler),
				// Its default (100 ms) caps a drain at MaxWorkers jobs per 100 ms (measured: 98
				// jobs/s at 10 workers); 1 ms, its minimum, lets it fetch as soon as a worker frees.
				FetchCooldown: river.FetchCooldownMin,
			})
			if err != nil {
				return err
			}
			// Room for every completion: River drops the events a full channel cannot take
			// (its default holds 1,000), which would look like lost jobs.
			events, cancel := c.SubscribeConfig(&river.SubscribeConfig{
				ChanSize: t.n, Kinds: []river.EventKind{river.EventKindJobCompleted},
			})
			defer cancel()
			go func() {
				for ev := range events {
					var a riverArgs
					if err := json.Unmarshal(ev.Job.EncodedArgs, &a); err != nil {
						a.I = -1
					}
					t.complete(a.I)
				}
			}()
			if err := c.Start(ctx); err != nil {
				return err
			}
			err = t.wait(ctx, dispatchStall)
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer scancel()
			return errors.Join(err, c.Stop(sctx))
		},
		check: func(ctx context.Context, n int) error {
			var total, completed int
			err := d.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'completed') FROM river_job WHERE queue = $1`, qname).
				Scan(&total, &completed)
			if err != nil {
				return err
			}
			if total != n || completed != n {
				return correctness("River: %d jobs, %d completed, want %d", total, completed, n)
			}
			if _, err := d.pool.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, qname); err != nil {
				return err
			}
			return vacuum(ctx, d.pool, "river_job")
		},
	}
}

func (d *riverDispatch) close() {
	if d.pool != nil {
		d.pool.Close()
	}
	(&liveServer{schema: d.schema}).dropSchema()
}
