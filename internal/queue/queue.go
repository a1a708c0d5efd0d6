// Package queue carries batch ids from the server to workers on taskq (Redis streams, queue
// "processing"). It is the only package that knows taskq: the rest of the system sees
// EnqueueBatch, HasMessage and Consume.
//
// taskq may deliver a message twice or lose it (see docs/decisions/0004-queue.md): the queue
// only delivers, Postgres is the truth. Workers claim batches in Postgres before working, and
// the server's reconciler enqueues again any queued batch whose message is gone. To tell
// "waiting in Redis" from "lost", every message has a marker key that lives exactly as long as
// the message is undelivered; a Redis that lost its data lost the markers too.
//
// A message carries the W3C trace context of the code that enqueued it (when there is one), so
// a trace goes on from the API call into the worker (trace.go); Stats reads the queue's depth
// for the metrics (stats.go).
package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	redisv8 "github.com/go-redis/redis/v8"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/taskq/v3"
	"github.com/vmihailenco/taskq/v3/redisq"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// Name is the queue's name, after the deployment's Redis prefix.
const Name = "processing"

// ExpressName is the express lane's queue, after the deployment's Redis prefix: the batches of
// small jobs, consumed by slots of their own so that they never wait behind bulk batches.
const ExpressName = "processing-express"

const taskName = "process_batch"

// fetcherStopWait bounds how long a stopping consumer waits for its fetchers to leave their
// blocking reads before it stops taskq (which then waits for them itself). A fetcher in its read
// leaves within a Redis round trip; one busy elsewhere (waiting to hand a message to a worker
// while all are busy) is left to taskq.
const fetcherStopWait = 250 * time.Millisecond

func init() {
	// taskq logs through the standard logger; its messages (retries, zombie cleanup) are noise
	// next to the service's own structured logs, which record every outcome that matters.
	taskq.SetLogger(log.New(io.Discard, "", 0))
}

// Config configures a Queue. Zero fields take their documented defaults.
type Config struct {
	// RedisURL is the Redis taskq uses (through its own go-redis v8 client). Required.
	RedisURL string
	// Prefix is the deployment's Redis prefix; the queue is named Prefix+"processing".
	Prefix string
	// Workers is how many batches one consumer works on at once (the spec's
	// max_concurrent_jobs). A fixed pool: taskq's autoscaling reads system load. Defaults to 5.
	Workers int
	// ReservationTimeout is how long taskq waits before handing a reserved but unacknowledged
	// message out again: how fast a batch taken by a consumer that died before claiming it (its
	// marker still set, so the reconciler trusts it) comes back. It counts from enqueue time, so
	// under a backlog a message may be handed out twice; the batch's claim in Postgres makes the
	// second delivery a no-op. Keep it near the lease. Defaults to 4m.
	ReservationTimeout time.Duration
	// MarkerTTL bounds how long a message's marker lives. Defaults to 24h.
	MarkerTTL time.Duration
	// Logger receives handler failures. Defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the enqueue (producer) and delivery (consumer) spans. Defaults to
	// none: no spans, and messages carry no trace context.
	TracerProvider trace.TracerProvider
	// ExpressMaxDocuments turns the express lane on: the batch of a job of at most this many
	// documents goes to the ExpressName queue instead of Name. Only a job's first batch that is
	// this small goes, so the setting must stay below the batch size (the app clamps it); a
	// big job's batches all stay in bulk. Defaults to 0: no express lane.
	ExpressMaxDocuments int
	// ExpressWorkers is how many express batches one consumer works on at once, on top of
	// Workers: slots only small jobs use, so one never waits for a bulk batch to end.
	// Defaults to 1 with the lane on; with it off, a positive value still serves the lane
	// (messages other processes sent there).
	ExpressWorkers int
	// Commands, when set, is told how many commands each call of taskq's Redis client sent
	// (benchmarks count them). It must be safe for concurrent use.
	Commands func(n int)
}

// lane is one taskq queue: the bulk lane (Name) or the express lane (ExpressName).
type lane struct {
	name    string // after the prefix
	q       taskq.Queue
	workers int
	reads   *blockingReader // the fetcher's blocking reads
	redis   taskqRedis      // the lane's client, whose acknowledgements go in the background
}

// Handler works on one delivered batch. An error makes taskq deliver it again later (with
// backoff); return nil once the batch is handled or known not to need handling.
type Handler func(ctx context.Context, batchID uuid.UUID) error

// Queue sends and receives batch messages.
type Queue struct {
	cfg     Config
	rdb     *redis.Client   // markers, with the service's client
	rdb8    *redisv8.Client // taskq's own
	lanes   []*lane         // bulk first, then express when on
	task    *taskq.Task
	handler atomic.Pointer[Handler]
	tracer  trace.Tracer
	// markerDels deletes delivered messages' markers, those of slots that start at once in one
	// round trip.
	markerDels *coalescer[*markerDel]

	consumeMu sync.Mutex
	consuming bool

	closeOnce sync.Once
	closeErr  error
}

// Open connects the queue. rdb is the service's Redis client, used for markers.
func Open(cfg Config, rdb *redis.Client) (*Queue, error) {
	if cfg.RedisURL == "" {
		return nil, errors.New("queue: RedisURL is required")
	}
	cfg.Workers = cmp.Or(cfg.Workers, 5)
	cfg.ReservationTimeout = cmp.Or(cfg.ReservationTimeout, 4*time.Minute)
	cfg.MarkerTTL = cmp.Or(cfg.MarkerTTL, 24*time.Hour)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("queue: Workers must be positive, got %d", cfg.Workers)
	}
	if cfg.ExpressMaxDocuments > 0 {
		cfg.ExpressWorkers = cmp.Or(cfg.ExpressWorkers, 1)
		if cfg.ExpressWorkers < 1 {
			return nil, fmt.Errorf("queue: ExpressWorkers must be positive, got %d", cfg.ExpressWorkers)
		}
	}
	opt, err := redisv8.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("queue: redis url: %w", err)
	}
	q := &Queue{cfg: cfg, rdb: rdb, rdb8: redisv8.NewClient(opt), tracer: newTracer(cfg.TracerProvider)}
	q.markerDels = newCoalescer(func(calls []*markerDel) { deleteMarkers(rdb, calls) })
	if cfg.Commands != nil {
		q.rdb8.AddHook(commandCounter{cfg.Commands})
	}

	// A registry of our own, not taskq's global one: several queues (tests, or a server with
	// in-process workers) may live in one process.
	tasks := &taskq.TaskMap{}
	q.task, err = tasks.Register(&taskq.TaskOptions{
		Name:       taskName,
		Handler:    q.handle,
		RetryLimit: 5,
		MinBackoff: time.Second,
		MaxBackoff: time.Minute,
	})
	if err != nil {
		return nil, err
	}
	factory := redisq.NewFactory()
	q.lanes = []*lane{q.openLane(factory, tasks, Name, cfg.Workers)}
	// A consumer serves the express lane whenever it has slots for it, even with the lane off
	// on its own side: another process (a server or worker of a rolling upgrade, or configured
	// differently) may send small jobs there, and they must not wait for the reconciler.
	if cfg.ExpressMaxDocuments > 0 || cfg.ExpressWorkers > 0 {
		q.lanes = append(q.lanes, q.openLane(factory, tasks, ExpressName, cfg.ExpressWorkers))
	}
	return q, nil
}

// openLane registers one taskq queue with the safe settings of docs/decisions/0004: a fixed
// pool, one message reserved and buffered at a time (a busy consumer does not sit on messages
// another could take), never paused on errors.
func (q *Queue) openLane(factory taskq.Factory, tasks *taskq.TaskMap, name string, workers int) *lane {
	var hook redisv8.Hook
	if q.cfg.Commands != nil {
		hook = commandCounter{q.cfg.Commands}
	}
	reads := newBlockingReader(q.rdb8, hook)
	client := newTaskqRedis(q.rdb8, reads, q.cfg.Logger)
	return &lane{name: name, workers: workers, reads: reads, redis: client, q: factory.RegisterQueue(&taskq.QueueOptions{
		Name:                 q.cfg.Prefix + name,
		Redis:                client,
		Handler:              tasks,
		MinNumWorker:         int32(workers),
		MaxNumWorker:         int32(workers),
		MaxNumFetcher:        1,
		ReservationSize:      1,
		BufferSize:           1,
		ReservationTimeout:   q.cfg.ReservationTimeout,
		WaitTimeout:          time.Second,
		PauseErrorsThreshold: -1,
	})}
}

// laneFor is where message n of a batch goes: the express lane for the first message of the
// only batch of a small job (a first batch below the batch size is the job's only one), bulk
// for the rest. A message sent again (a lost message, an expired lease, a batch handed back, a
// duplicate) goes to bulk: taskq's fetcher holds one message for a consumer whose slots are all
// busy, so a repeat on the express lane could wait there behind the very batch it repeats, and
// a repair need not overtake anything.
func (q *Queue) laneFor(b *jobs.Batch, n int) *lane {
	if len(q.lanes) > 1 && n == 1 && b.Seq == 0 && len(b.DocumentIDs) <= q.cfg.ExpressMaxDocuments {
		return q.lanes[1]
	}
	return q.lanes[0]
}

func (q *Queue) markerKey(batchID string) string {
	return q.cfg.Prefix + Name + ":queued:" + batchID
}

// EnqueueBatch implements jobs.Enqueuer: it sets the batch's marker, then adds a message carrying
// the batch id (and the trace context, when ctx has one). The message has no taskq name, so
// taskq never drops it as a duplicate.
func (q *Queue) EnqueueBatch(ctx context.Context, b *jobs.Batch, n int) (_ string, err error) {
	id := b.ID.String()
	ctx, end := q.startEnqueueSpan(ctx, id, n)
	defer func() { end(err) }()
	if err := q.rdb.Set(ctx, q.markerKey(id), strconv.Itoa(n), q.cfg.MarkerTTL).Err(); err != nil {
		return "", fmt.Errorf("queue: set marker: %w", err)
	}
	msg := q.task.WithArgs(ctx, messageArgs(ctx, id, n)...)
	msg.ID = q.MessageID(b.ID, n)
	if err := q.laneFor(b, n).q.Add(msg); err != nil {
		// Without the message the marker would lie; if this delete fails too, the marker's TTL
		// ends the lie and the reconciler enqueues the batch then.
		_ = q.rdb.Del(context.WithoutCancel(ctx), q.markerKey(id)).Err()
		return "", fmt.Errorf("queue: add message: %w", err)
	}
	return msg.ID, nil
}

// MessageID implements jobs.Enqueuer: message n of a batch is "<batch id>/<n>", so that a
// re-enqueue is never taken for a duplicate of an earlier message.
func (q *Queue) MessageID(batchID uuid.UUID, n int) string {
	return batchID.String() + "/" + strconv.Itoa(n)
}

// markerDel is the deletion of one delivered message's marker.
type markerDel struct {
	ctx context.Context
	key string
	// enqueue is the number of the delivered message's enqueue: the marker goes only while it
	// still marks that enqueue. Empty for a message from before messages carried it: the
	// marker goes whatever it marks.
	enqueue string
	err     error
}

// deleteMarkerScript deletes each key whose value is the matching argument, or whose argument
// is empty, and returns how many it deleted.
var deleteMarkerScript = redis.NewScript(`
local n = 0
for i, key in ipairs(KEYS) do
  if ARGV[i] == '' or redis.call('GET', key) == ARGV[i] then
    n = n + redis.call('DEL', key)
  end
end
return n`)

// deleteMarkers deletes the calls' markers in one round trip, each only while it marks the
// enqueue of the call's message. Since the delete no longer holds up the handler, it may reach
// Redis after the same batch was enqueued again (a batch handed back by this handler, or sent
// again by the reconciler meanwhile): that newer enqueue's marker must stay, as its message
// waits.
func deleteMarkers(rdb *redis.Client, calls []*markerDel) {
	keys := make([]string, len(calls))
	enqueues := make([]any, len(calls))
	for i, c := range calls {
		keys[i], enqueues[i] = c.key, c.enqueue
	}
	// Without the first caller's end: a stopping handler must not fail the others' deletes.
	err := deleteMarkerScript.Run(context.WithoutCancel(calls[0].ctx), rdb, keys, enqueues...).Err()
	for _, c := range calls {
		c.err = err
	}
}

// HasMessage reports whether a message for the batch is waiting in Redis, undelivered.
func (q *Queue) HasMessage(ctx context.Context, batchID uuid.UUID) (bool, error) {
	n, err := q.rdb.Exists(ctx, q.markerKey(batchID.String())).Result()
	return n > 0, err
}

// Len is the number of messages in the streams of both lanes (waiting or being worked on).
func (q *Queue) Len() (int, error) {
	total := 0
	for _, l := range q.lanes {
		n, err := l.q.Len()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// handle is taskq's handler. It takes the raw message so that it can read both the old
// one-argument messages and those that also carry a trace context.
func (q *Queue) handle(msg *taskq.Message) (err error) {
	h := q.handler.Load()
	if h == nil {
		return errors.New("queue: no handler")
	}
	// After the handler returns, taskq acknowledges the message, or gives it back for a retry,
	// with msg.Ctx: the consumer's context, cancelled when the consumer stops. With it cancelled
	// the ack or give-back fails and the message stays pending under this consumer, which taskq
	// deletes from the stream's group on Close: the message is lost and, when its marker is still
	// set, the reconciler trusts the marker until the batch is overdue. So taskq gets a context
	// that outlives the stop; the handler keeps the cancellable one.
	handlerCtx := msg.Ctx
	msg.Ctx = context.WithoutCancel(handlerCtx)
	if err := handlerCtx.Err(); err != nil {
		// Handed out after the consumer stopped (taskq drains its buffer on the way out): give it
		// back untouched, marker and all, for another consumer.
		return fmt.Errorf("queue: consumer stopping: %w", err)
	}
	batchID, enqueue, carrier, err := parseArgs(msg)
	if err != nil {
		q.cfg.Logger.ErrorContext(msg.Ctx, "queue: dropping an undecodable message", "err", err)
		return nil
	}
	ctx, end := q.startDeliverySpan(handlerCtx, carrier, batchID, msg.ReservedCount)
	defer func() { end(err) }()
	// Delivered: from here on the batch's fate is in Postgres (claim, lease, reconciler). The
	// marker's delete goes while the handler claims the batch, and is back before the message
	// is acknowledged, so that a marker never outlives its message.
	del := &markerDel{ctx: ctx, key: q.markerKey(batchID), enqueue: enqueue}
	deleted := q.markerDels.start(del)
	defer func() {
		if <-deleted; del.err != nil {
			q.cfg.Logger.WarnContext(ctx, "queue: delete marker", "batch_id", batchID, "err", del.err)
		}
	}()
	id, err := uuid.Parse(batchID)
	if err != nil {
		q.cfg.Logger.ErrorContext(ctx, "queue: dropping message with a malformed batch id", "batch_id", batchID)
		return nil
	}
	return (*h)(ctx, id)
}

// Consume runs h for delivered messages, Workers at a time (and ExpressWorkers more for the
// express lane), until ctx ends; then it stops fetching and waits up to grace for running
// handlers (whose ctx is cancelled) to return.
func (q *Queue) Consume(ctx context.Context, h Handler, grace time.Duration) error {
	q.consumeMu.Lock()
	if q.consuming {
		q.consumeMu.Unlock()
		return errors.New("queue: already consuming")
	}
	q.consuming = true
	q.consumeMu.Unlock()

	q.handler.Store(&h)
	var started []taskq.QueueConsumer
	var startErr error
	for _, l := range q.lanes {
		c := l.q.Consumer()
		// The lane's slots that could start a message now: taskq counts a message in flight from
		// the moment a slot starts it until it is acknowledged or given back, and buffered while
		// the fetcher has handed it over and no slot has taken it yet.
		free := func() int {
			s := c.Stats()
			return l.workers - int(s.InFlight) - int(s.Buffered)
		}
		l.reads.freeSlots.Store(&free)
		if err := c.Start(ctx); err != nil {
			startErr = fmt.Errorf("queue: start consumer of %s: %w", l.name, err)
			break
		}
		started = append(started, c)
	}
	if startErr == nil {
		<-ctx.Done()
	}
	// The fetchers' blocking reads end with ctx, and the fetchers stop (blockingReader); taskq
	// is told to stop once they have, so that its idle workers do not spin waiting for them.
	var fetchers sync.WaitGroup
	for _, l := range q.lanes[:len(started)] {
		fetchers.Go(func() { l.reads.waitStopped(fetcherStopWait) })
	}
	fetchers.Wait()
	// The lanes stop at once, so that each has the whole grace for its running handlers.
	stopErrs := make([]error, len(started))
	var wg sync.WaitGroup
	for i, c := range started {
		wg.Go(func() {
			if err := c.StopTimeout(grace); err != nil {
				stopErrs[i] = fmt.Errorf("queue: stop consumer of %s: %w", q.lanes[i].name, err)
			}
		})
	}
	wg.Wait()
	// The last acknowledgements, before anything deletes the consumer from its group.
	for _, l := range q.lanes {
		l.redis.flushAcks()
	}
	return errors.Join(append(stopErrs, startErr)...)
}

// Close stops the queue's background work and closes taskq's Redis client. Calls after the
// first do nothing.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		var errList []error
		for _, l := range q.lanes {
			l.redis.flushAcks()
			errList = append(errList, l.q.Close())
			l.reads.Close()
		}
		q.closeErr = errors.Join(append(errList, q.rdb8.Close())...)
	})
	return q.closeErr
}
