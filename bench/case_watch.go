package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// The watch latency case: a worker's progress report (WorkerService.ReportProgress, on one
// stream per batch as worker/worker.go keeps it) to the matching update at a WatchJob client,
// for 50 jobs at once, on a real server in this process. Floor: a Redis PUBLISH to a
// SUBSCRIBE on the same Redis, 50 channels at once.
//
// Two loads, on the same jobs and streams (docs/decisions/0023):
//   - open loop, the latency the target is about: each job's reports come at random
//     (Poisson) times at watchRate updates per second over all jobs, whether or not the previous
//     update has arrived, and latency runs from the time a report was due, so a slow update
//     also delays (and is charged for) the reports behind it;
//   - closed loop, the saturation figure: a job's next report is sent once the watcher has the
//     previous one's update, so the loops go as fast as the service allows and latency is
//     watchJobs / throughput (Little's law): a throughput measure as much as a latency one.
//
// Either way every report must produce its own update, in order (a report that coalesced with
// the next would be indistinguishable from a lost event). The server's watch poll is turned off
// (an hour), so every update comes from the event path: a lost notice is a timeout, not a 5 s
// delay.
// watchCPUPerEvent is the bench process's CPU time per update: for the project, its server and
// the in-process reporting and watching clients; for the floor, the publishing and subscribing
// clients. Postgres's and Redis's own CPU is not in it.
const watchCPUPerEvent = "CPU ms/event"

// watchPGCPUPerEvent is the CPU time per update of the Postgres backends that served the
// project's server during a run (read from /proc; 10 ms ticks, so only meaningful over a whole
// run), the other half of the per-update cost on a machine where both share the cores.
const watchPGCPUPerEvent = "PG CPU ms/event"

const (
	watchJobs    = 50
	watchTimeout = 10 * time.Second // a report whose update takes longer is lost
	// watchRate is the open loop's offered load, in updates per second over all jobs: about
	// twice the most progress reports this machine's service produces (a report per document;
	// the e2e case's 2 workers finish ~1,000-1,300 documents/s here), so it is a peak, not a
	// typical load.
	watchRate = 2000
	// watchMaxDocuments is the most documents the watch case's job may have: one
	// IngestDocuments request makes it (content.MaxDocumentsPerUpsert).
	watchMaxDocuments = 1000
)

func init() {
	ms := func(name string) Metric { return Metric{Name: name + " ms", Format: "%.2f", LowerBetter: true} }
	register(&Case{
		Name:    "watch",
		About:   fmt.Sprintf("progress report -> WatchJob update latency, %d jobs at once, vs Redis PUBLISH -> SUBSCRIBE", watchJobs),
		Primary: ms("p99"),
		Summary: []Metric{ms("p50"), ms("p99")},
		Columns: []Metric{ms("p50"), ms("p99"), ms("max"), {Name: "events/s", Format: "%.0f"},
			{Name: watchCPUPerEvent, Format: "%.3f", LowerBetter: true},
			{Name: watchPGCPUPerEvent, Format: "%.3f", LowerBetter: true},
			{Name: "PG trips/event", Format: "%.3f"}, {Name: "PG stmts/event", Format: "%.3f"},
			{Name: "Redis trips/event", Format: "%.2f"}, {Name: "Redis cmds/event", Format: "%.2f"},
			{Name: "events", Format: "%.0f"}, {Name: "lost", Format: "%.0f"}, {Name: "reordered", Format: "%.0f"}},
		Prepare: prepareWatch,
	})
}

// watchEvent is what a watcher saw: the sequence number of the update and when it arrived.
type watchEvent struct {
	seq int64
	at  time.Time
	err error
}

// awaitSeq reads events until the one numbered want, which must come next: an earlier number
// than the last one seen is a reordering, a later one than want or none within the timeout a
// loss. Repeats of the last number (an update without progress) are skipped. It returns the
// arrival time.
func awaitSeq(ch <-chan watchEvent, last, want int64, timeout time.Duration) (time.Time, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			switch {
			case ev.err != nil:
				return time.Time{}, ev.err
			case ev.seq == want:
				return ev.at, nil
			case ev.seq == last:
				continue
			case ev.seq < last:
				return time.Time{}, correctness("reordered: update %d arrived after %d", ev.seq, last)
			default:
				return time.Time{}, correctness("lost: update %d arrived while waiting for %d", ev.seq, want)
			}
		case <-timer.C:
			return time.Time{}, correctness("lost: no update %d within %s", want, timeout)
		}
	}
}

// loopFunc sends job j's update number seq and returns when it was sent.
type loopFunc func(ctx context.Context, j int, seq int64) (time.Time, error)

// openLoops sends perJob updates on each of the jobs at random times, a Poisson process of rate
// updates per second over all jobs (each job's first one at a random offset), whatever the
// updates already sent have done; a job's send waits for the previous one to return (a
// worker's report stream answers each report in turn). It returns the latencies in milliseconds,
// each from the time its report was due, so a late send is charged to the latency too. A lost or
// reordered update (awaitSeq, at most timeout after the previous one) fails the run.
func openLoops(ctx context.Context, events []chan watchEvent, next []int64, perJob int, rate float64, timeout time.Duration, send loopFunc) ([]float64, time.Duration, error) {
	lat := make([][]float64, len(events))
	mean := float64(len(events)) / rate // seconds between one job's updates, on average
	g, gctx := errgroup.WithContext(ctx)
	t0 := time.Now()
	for j := range events {
		due := make([]atomic.Int64, perJob) // unix nanoseconds at which update k was due
		rng := rand.New(rand.NewPCG(uint64(j), uint64(t0.UnixNano())))
		gap := func() time.Duration { return time.Duration(rng.ExpFloat64() * mean * float64(time.Second)) }
		g.Go(func() error { // the reports
			at := t0.Add(gap())
			for k := range perJob {
				due[k].Store(at.UnixNano())
				if wait := time.Until(at); wait > 0 {
					select {
					case <-time.After(wait):
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				if _, err := send(gctx, j, next[j]+int64(k)+1); err != nil {
					return fmt.Errorf("job %d, update %d: %w", j, next[j]+int64(k)+1, err)
				}
				at = at.Add(gap())
			}
			return nil
		})
		g.Go(func() error { // their updates
			last := next[j]
			for k := range perJob {
				arrived, err := awaitSeq(events[j], last, last+1, timeout)
				if err != nil {
					return fmt.Errorf("job %d: %w", j, err)
				}
				lat[j] = append(lat[j], float64(arrived.UnixNano()-due[k].Load())/1e6)
				last++
			}
			return nil
		})
	}
	err := g.Wait()
	wall := time.Since(t0)
	if err == nil {
		for j := range next {
			next[j] += int64(perJob)
		}
	}
	return slices.Concat(lat...), wall, err
}

// closedLoops runs perJob updates on each of the jobs at once, each job waiting (at most timeout)
// for its update before sending the next, and returns the latencies in milliseconds.
func closedLoops(ctx context.Context, events []chan watchEvent, next []int64, perJob int, timeout time.Duration, send loopFunc) ([]float64, time.Duration, error) {
	lat := make([][]float64, len(events))
	g, gctx := errgroup.WithContext(ctx)
	t0 := time.Now()
	for j := range events {
		g.Go(func() error {
			for range perJob {
				seq := next[j] + 1
				sent, err := send(gctx, j, seq)
				if err != nil {
					return fmt.Errorf("job %d, update %d: %w", j, seq, err)
				}
				at, err := awaitSeq(events[j], next[j], seq, timeout)
				if err != nil {
					return fmt.Errorf("job %d: %w", j, err)
				}
				lat[j] = append(lat[j], float64(at.Sub(sent).Nanoseconds())/1e6)
				next[j] = seq
			}
			return nil
		})
	}
	err := g.Wait()
	return slices.Concat(lat...), time.Since(t0), err
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// latencySample summarises latencies in milliseconds of what (events, calls) measured over wall.
func latencySample(lat []float64, wall time.Duration, what string) Sample {
	s := slices.Clone(lat)
	slices.Sort(s)
	return Sample{
		"p50 ms": percentile(s, 0.50), "p99 ms": percentile(s, 0.99), "max ms": s[len(s)-1],
		what + "/s": float64(len(s)) / wall.Seconds(), what: float64(len(s)),
	}
}

// watchLoads are the numbers of updates per job in one run of each load: the open loop's at
// watchRate, and the closed loop's.
func watchLoads(short bool) (open, closed int) {
	if short {
		return 40, 10
	}
	return 80, 40
}

func prepareWatch(ctx context.Context, env *Env) (p *Prepared, err error) {
	open, closed := watchLoads(env.Short)
	// Each report marks one more document done, so a job needs a document per report of every
	// run (the warm-up's too), plus one that is never reported, so that it never finishes.
	docs := (env.Runs+1)*(open+closed) + 1
	if docs > watchMaxDocuments {
		return nil, fmt.Errorf("watch: %d runs need %d documents a job, more than the %d one request may ingest: use fewer runs", env.Runs, docs, watchMaxDocuments)
	}
	trips := &tripCounter{}
	srv, err := startServerWith(ctx, env.Dir, func(c *config.Config) {
		c.WatchPollInterval = time.Hour
		c.BatchSize = docs // one batch per job, held by one reporting "worker"
	}, app.Options{PGTracer: trips, RedisCommands: trips.redisCall})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var closers []func()
	closeAll := func() {
		cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		srv.Close()
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	project, err := watchProject(ctx, runCtx, env, srv, docs, trips, &closers)
	if err != nil {
		return nil, err
	}
	floor, err := watchFloor(ctx, runCtx, srv, &closers)
	if err != nil {
		return nil, err
	}
	subjects := []*Subject{
		project.subject(openLoad, open), floor.subject(openLoad, open),
		project.subject(closedLoad, closed), floor.subject(closedLoad, closed),
	}
	return &Prepared{
		Input: fmt.Sprintf("%d jobs at once, %d documents a job; per run, %d updates a job at %d updates/s over all jobs (open loop), then %d a job as fast as they go (closed loop)",
			watchJobs, docs, open, watchRate, closed),
		Subjects: subjects,
		Compare:  [][2]string{{subjects[0].Name, subjects[1].Name}, {subjects[2].Name, subjects[3].Name}},
		Notes: []string{
			"latency: to the arrival of the update that shows the report (a WatchJob message whose processed_count counts it; the Redis message carrying its number), from the time the report was due (open loop) or from just before it was sent (closed loop); lower is better, so ratio = floor / project (below 1: the project is slower than the floor, as it must be)",
			"project: a real server in this process (app.Build, server.New) on its own Postgres schema and Redis prefix; each report marks one document done (recorded by the server's group commit: the reports waiting together share one transaction and one round trip to Postgres; the committed job goes to the watchers with the notice, without a re-read); WatchJob's poll is off, so every update comes from a notice",
			fmt.Sprintf("open loop (the target's measure, docs/decisions/0023): each job's reports come at random (Poisson) times, %d updates/s over the %d jobs (about twice the most reports this machine's service produces: one per document), whatever the earlier updates did; a job's report waits for the previous one's answer, as on a worker's stream, and its latency counts from when it was due", watchRate, watchJobs),
			"closed loop (saturation): the next report is sent when the previous one's update has arrived, so the loops run as fast as the service allows and latency is jobs / throughput; lost: an update missing for 10 s or skipped; reordered: an update older than one already seen; either fails the case, in both loads",
			"CPU ms/event: this process's CPU time during a run per update (project: the server and the in-process reporting and watching clients; floor: the Redis clients), not Postgres's or Redis's; PG CPU ms/event: that of the Postgres backends serving the project's server (from /proc, in 10 ms ticks; the WAL writer and Redis not counted)",
			"PG trips/event and stmts/event: Postgres round trips (one statement, or one pipelined batch) and statements the server sent during a run, per update; Redis trips/event and cmds/event likewise (a pipeline is one trip); counted by a pgx tracer and a go-redis hook on the server's own clients",
		},
		Close: closeAll,
	}, nil
}

// watchProject ingests a job per watcher, claims its batch as a worker does, and opens a
// ReportProgress stream and a WatchJob stream per job; they live until the case closes.
func watchProject(ctx, runCtx context.Context, env *Env, srv *liveServer, docs int, trips *tripCounter, closers *[]func()) (*watchSide, error) {
	content := pipelinev1.NewContentServiceClient(srv.Conn)
	jobsClient := pipelinev1.NewJobServiceClient(srv.Conn)
	workers := pipelinev1.NewWorkerServiceClient(srv.Conn)
	src, err := content.CreateSource(ctx, &pipelinev1.CreateSourceRequest{Name: "bench-watch"})
	if err != nil {
		return nil, fmt.Errorf("create source: %w", err)
	}
	type jobLoop struct {
		jobID, batchID string
		docIDs         []string
		reports        pipelinev1.WorkerService_ReportProgressClient
	}
	loops := make([]*jobLoop, watchJobs)
	events := make([]chan watchEvent, watchJobs)
	next := make([]int64, watchJobs)
	for j := range loops {
		in := make([]*pipelinev1.DocumentInput, docs)
		for d := range in {
			in[d] = &pipelinev1.DocumentInput{Uri: fmt.Sprintf("watch/%d/%d.md", j, d), Content: fmt.Sprintf("# Job %d\n\nDocument %d.", j, d)}
		}
		resp, err := content.IngestDocuments(ctx, &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSource().GetSourceId(), Documents: in})
		if err != nil {
			return nil, fmt.Errorf("ingest job %d: %w", j, err)
		}
		l := &jobLoop{jobID: resp.GetJob().GetJobId()}
		for _, d := range resp.GetDocuments() {
			l.docIDs = append(l.docIDs, d.GetDocumentId())
		}
		jobID, err := uuid.Parse(l.jobID)
		if err != nil {
			return nil, err
		}
		batches, err := srv.Deps.Jobs.Batches(ctx, jobID)
		if err != nil {
			return nil, err
		}
		if len(batches) != 1 {
			return nil, fmt.Errorf("job %d has %d batches, want 1", j, len(batches))
		}
		// The worker's claim (worker/worker.go claims through the job manager too).
		if _, _, err := srv.Deps.Jobs.ClaimBatch(ctx, batches[0].ID, "bench-worker", time.Hour); err != nil {
			return nil, fmt.Errorf("claim job %d's batch: %w", j, err)
		}
		l.batchID = batches[0].ID.String()
		if l.reports, err = workers.ReportProgress(runCtx); err != nil {
			return nil, err
		}
		watch, err := jobsClient.WatchJob(runCtx, &pipelinev1.WatchJobRequest{JobId: l.jobID})
		if err != nil {
			return nil, err
		}
		first, err := watch.Recv()
		if err != nil {
			return nil, fmt.Errorf("watch job %d: %w", j, err)
		}
		if st := first.GetJob().GetStatus(); st != pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS {
			return nil, fmt.Errorf("job %d is %v after the claim", j, st)
		}
		next[j] = first.GetJob().GetProcessing().GetProcessedCount()
		ch := make(chan watchEvent, docs+1)
		events[j] = ch
		go func() {
			for {
				m, err := watch.Recv()
				if err != nil {
					if runCtx.Err() == nil {
						ch <- watchEvent{err: fmt.Errorf("watch: %w", err)}
					}
					return
				}
				ch <- watchEvent{seq: m.GetJob().GetProcessing().GetProcessedCount(), at: time.Now()}
			}
		}()
		loops[j] = l
	}
	env.Logf("watch: %d jobs of %d documents ingested, claimed and watched", watchJobs, docs)
	*closers = append(*closers, func() {
		for _, l := range loops {
			if l != nil && l.reports != nil {
				_ = l.reports.CloseSend()
			}
		}
	})

	send := func(ctx context.Context, j int, seq int64) (time.Time, error) {
		l := loops[j]
		req := &pipelinev1.ReportProgressRequest{
			WorkerId: "bench-worker", JobId: l.jobID, BatchId: l.batchID,
			Results: []*pipelinev1.DocumentResult{{
				DocumentId: l.docIDs[seq-1], Status: pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED,
				ChunkCount: 1, Attempts: 1,
			}},
		}
		sent := time.Now()
		if err := l.reports.Send(req); err != nil {
			return sent, err
		}
		ack, err := l.reports.Recv()
		if err != nil {
			return sent, err
		}
		if ack.GetStop() || ack.GetJobStatus() != pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS {
			return sent, fmt.Errorf("the server answered stop=%v (%s), job %v", ack.GetStop(), ack.GetStopReason(), ack.GetJobStatus())
		}
		return sent, nil
	}
	return &watchSide{name: "project ReportProgress -> WatchJob", trips: trips, events: events, next: next, send: send}, nil
}

// watchFloor subscribes to a channel per job and publishes numbered messages on it.
func watchFloor(ctx, runCtx context.Context, srv *liveServer, closers *[]func()) (*watchSide, error) {
	events := make([]chan watchEvent, watchJobs)
	channels := make([]string, watchJobs)
	for j := range events {
		channels[j] = srv.Prefix + "watch-floor:" + strconv.Itoa(j)
		sub := srv.Redis.Subscribe(ctx, channels[j])
		*closers = append(*closers, func() { _ = sub.Close() })
		if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		ch := make(chan watchEvent, 1024)
		events[j] = ch
		go func() {
			for {
				m, err := sub.ReceiveMessage(runCtx)
				if err != nil {
					if runCtx.Err() == nil && !errors.Is(err, redis.ErrClosed) {
						ch <- watchEvent{err: fmt.Errorf("subscribe: %w", err)}
					}
					return
				}
				at := time.Now()
				n, err := strconv.ParseInt(m.Payload, 10, 64)
				if err != nil {
					ch <- watchEvent{err: correctness("message %q is not a number", m.Payload)}
					return
				}
				ch <- watchEvent{seq: n, at: at}
			}
		}()
	}
	send := func(ctx context.Context, j int, seq int64) (time.Time, error) {
		sent := time.Now()
		n, err := srv.Redis.Publish(ctx, channels[j], strconv.FormatInt(seq, 10)).Result()
		if err == nil && n != 1 {
			err = correctness("PUBLISH reached %d subscribers, want 1", n)
		}
		return sent, err
	}
	return &watchSide{name: "Redis PUBLISH -> SUBSCRIBE", events: events, next: make([]int64, watchJobs), send: send}, nil
}

// watchSide is one side of the case (the project or the floor): its jobs' update streams, the
// last update number of each and how to send the next. Both loads use the same jobs in turn.
type watchSide struct {
	name   string
	trips  *tripCounter // the project's: what its server sends to Postgres and Redis
	events []chan watchEvent
	next   []int64
	send   loopFunc
	mu     sync.Mutex // one run at a time on the jobs
}

type watchLoad int

const (
	openLoad watchLoad = iota
	closedLoad
)

// subject measures perJob updates a job per run under load.
func (w *watchSide) subject(load watchLoad, perJob int) *Subject {
	name := w.name + ", closed loop"
	if load == openLoad {
		name = fmt.Sprintf("%s, %d/s", w.name, watchRate)
	}
	sub := &Subject{Name: name, Project: w.trips != nil}
	trips := w.trips
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		before, cpu0, pg0 := trips.read(), cpuTime(), trips.backendCPU()
		var lat []float64
		var wall time.Duration
		var err error
		if load == openLoad {
			lat, wall, err = openLoops(ctx, w.events, w.next, perJob, watchRate, watchTimeout, w.send)
		} else {
			lat, wall, err = closedLoops(ctx, w.events, w.next, perJob, watchTimeout, w.send)
		}
		if err != nil {
			return nil, err
		}
		used, cpu, pg := trips.read(), cpuTime()-cpu0, trips.backendCPU()
		if len(lat) != len(w.events)*perJob {
			return nil, correctness("%d updates measured, want %d", len(lat), len(w.events)*perJob)
		}
		// A run stops at the first lost or reordered update, so one that returns had none.
		sub.Quality = map[string]float64{"lost": 0, "reordered": 0}
		sample := latencySample(lat, wall, "events")
		sample[watchCPUPerEvent] = float64(cpu.Microseconds()) / 1e3 / float64(len(lat))
		if trips != nil {
			n := float64(len(lat))
			sample["PG trips/event"] = float64(used[0]-before[0]) / n
			sample["PG stmts/event"] = float64(used[1]-before[1]) / n
			sample["Redis trips/event"] = float64(used[2]-before[2]) / n
			sample["Redis cmds/event"] = float64(used[3]-before[3]) / n
			if pg0 >= 0 && pg >= 0 {
				sample[watchPGCPUPerEvent] = float64((pg - pg0).Microseconds()) / 1e3 / n
			}
		}
		return sample, nil
	}
	return sub
}

// tripCounter counts what the server sends: Postgres round trips (a statement alone, or a
// pipelined batch of them) and statements, Redis round trips (a command alone, or a pipeline)
// and commands.
// It also notes the process ids of the Postgres backends it sent them to.
type tripCounter struct {
	pgTrips, pgStmts, redisTrips, redisCmds atomic.Int64
	backends                                sync.Map // backend pid (uint32) -> struct{}
}

func (c *tripCounter) TraceQueryStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.pgTrips.Add(1)
	c.pgStmts.Add(1)
	c.backends.Store(conn.PgConn().PID(), struct{}{})
	return ctx
}
func (*tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *tripCounter) TraceBatchStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.pgTrips.Add(1)
	c.backends.Store(conn.PgConn().PID(), struct{}{})
	return ctx
}

// backendCPU is the CPU time (user and system) the noted Postgres backends have used, from
// /proc/<pid>/stat (Postgres runs on this machine); -1 if it cannot be read. A backend that has
// gone since counts no more, so compare readings taken while the pool is open.
func (c *tripCounter) backendCPU() time.Duration {
	if c == nil {
		return -1
	}
	var total time.Duration
	ok := true
	c.backends.Range(func(k, _ any) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", k.(uint32)))
		if err != nil {
			return true // gone: the pool closed the connection
		}
		_, cpu, parsed := procStatCPU(b)
		if !parsed {
			ok = false
			return false
		}
		total += cpu
		return true
	})
	if !ok {
		return -1
	}
	return total
}
func (c *tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.pgStmts.Add(1)
}
func (*tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c *tripCounter) redisCall(n int) {
	c.redisTrips.Add(1)
	c.redisCmds.Add(int64(n))
}

// read returns the four counts; zeros for a nil counter (the floor has none).
func (c *tripCounter) read() [4]int64 {
	if c == nil {
		return [4]int64{}
	}
	return [4]int64{c.pgTrips.Load(), c.pgStmts.Load(), c.redisTrips.Load(), c.redisCmds.Load()}
}
