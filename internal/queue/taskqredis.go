package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	redisv8 "github.com/go-redis/redis/v8"
	"github.com/vmihailenco/taskq/v3/memqueue"
)

// taskqRedis is the Redis client handed to taskq. It works around a taskq v3.2.9 bug: when its
// fetcher holds a message no handler takes within 0.9 x ReservationTimeout (every handler busy
// with a long batch), it releases the message through a transaction pipeline executed with the
// message's context, which is nil for a message never handed to a handler; go-redis then
// dereferences the nil context and the whole worker process dies. Here a pipeline run with a
// nil context runs with context.Background(), so the message goes back to the stream as taskq
// intends.
//
// It also ends taskq's blocking stream reads when the consumer stops, reading as many messages
// as the consumer has free slots (blockingReader), and acknowledges a handled message and
// deletes it in the background, in one round trip shared with the other slots'
// acknowledgements (XAck).
type taskqRedis struct {
	*redisv8.Client
	reads *blockingReader // nil: blocking reads go through the pool like any command
	acked *ackedEntries   // deleted with their acknowledgement, for XDel
	acks  *coalescer[*ackCall]
}

func newTaskqRedis(rdb *redisv8.Client, reads *blockingReader, log *slog.Logger) taskqRedis {
	return taskqRedis{
		Client: rdb, reads: reads, acked: &ackedEntries{m: map[ackedEntry]struct{}{}},
		acks: newCoalescer(func(calls []*ackCall) { sendAcks(rdb, log, calls) }),
	}
}

// ackCall is one XAck call: its entries, and the replies to its acknowledgement and delete.
type ackCall struct {
	ctx           context.Context
	stream, group string
	ids           []string
	ack, del      *redisv8.IntCmd
}

// sendAcks sends the calls' acknowledgements and deletes in one pipeline, each call's own
// commands (so that each gets its own replies), and logs those that failed: their messages stay
// pending under the consumer, and taskq delivers them again once their reservation runs out (or
// they are given back when the consumer is deleted), which the claim of a done batch turns into
// a no-op.
func sendAcks(rdb *redisv8.Client, log *slog.Logger, calls []*ackCall) {
	// The first call's context's values, without its end, so that no caller's cancellation fails
	// the others' acknowledgements (taskq gives each one that outlives the consumer's stop
	// anyway: Queue.handle).
	ctx := context.WithoutCancel(calls[0].ctx)
	_, _ = rdb.Pipelined(ctx, func(p redisv8.Pipeliner) error {
		for _, c := range calls {
			c.ack = p.XAck(ctx, c.stream, c.group, c.ids...)
			c.del = p.XDel(ctx, c.stream, c.ids...)
		}
		return nil
	})
	for _, c := range calls {
		if err := cmp.Or(c.ack.Err(), c.del.Err()); err != nil {
			log.WarnContext(c.ctx, "queue: acknowledge a handled message", "stream", c.stream, "entries", c.ids, "err", err)
		}
	}
}

// XAck acknowledges stream entries and deletes them, in one round trip, in the background.
// taskq calls it for a handled message (redisq's Delete), then XDel for the same entry, and its
// slot takes its next message only once both have returned: two round trips on every message
// before this. Now XAck returns at once, its round trip shared with the acknowledgements of
// the other slots that finish meanwhile (one round trip per group), and XDel, finding the
// entries in hand, sends nothing. A failure is logged (sendAcks). The queue waits for the
// acknowledgements under way when its consumer stops (flushAcks), before taskq deletes the
// consumer, which would give back the messages it still holds. (taskq's other
// acknowledgements, of messages given back or delayed, go through TxPipeline, which delete and
// add again themselves, and return when done.)
func (c taskqRedis) XAck(ctx context.Context, stream, group string, ids ...string) *redisv8.IntCmd {
	c.acked.add(stream, ids)
	c.acks.start(&ackCall{ctx: ctx, stream: stream, group: group, ids: ids})
	cmd := redisv8.NewIntCmd(ctx)
	cmd.SetVal(int64(len(ids)))
	return cmd
}

// flushAcks returns once the acknowledgements XAck started have been sent.
func (c taskqRedis) flushAcks() {
	c.acks.flush()
}

// XDel deletes stream entries, unless XAck is deleting them already.
func (c taskqRedis) XDel(ctx context.Context, stream string, ids ...string) *redisv8.IntCmd {
	if c.acked.take(stream, ids) {
		cmd := redisv8.NewIntCmd(ctx)
		cmd.SetVal(int64(len(ids)))
		return cmd
	}
	return c.Client.XDel(ctx, stream, ids...)
}

// ackedEntries are the stream entries XAck is deleting and XDel has not been asked for yet.
type ackedEntries struct {
	mu sync.Mutex
	m  map[ackedEntry]struct{}
}

type ackedEntry struct{ stream, id string }

func (a *ackedEntries) add(stream string, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		a.m[ackedEntry{stream, id}] = struct{}{}
	}
}

// take forgets the entries and reports whether all of them were there.
func (a *ackedEntries) take(stream string, ids []string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		if _, ok := a.m[ackedEntry{stream, id}]; !ok {
			return false
		}
	}
	for _, id := range ids {
		delete(a.m, ackedEntry{stream, id})
	}
	return true
}

func (c taskqRedis) TxPipeline() redisv8.Pipeliner {
	return nilContextPipeline{c.Client.TxPipeline()}
}

type nilContextPipeline struct{ redisv8.Pipeliner }

func (p nilContextPipeline) Exec(ctx context.Context) ([]redisv8.Cmder, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return p.Pipeliner.Exec(ctx)
}

// XGroupDelConsumer gives back the messages the consumer still holds before deleting it from the
// group. taskq deletes its own consumer on Close, and other consumers that have been idle for
// hours; Redis forgets a deleted consumer's pending messages, so they would never be delivered
// again while their markers said they wait. A consumer holds messages after a stop when taskq
// could not acknowledge or give back what it took (the consumer's context was cancelled), or
// when a process died mid-batch and its consumer is cleaned up as a zombie. Each message goes
// back as a new stream entry, atomically with the removal of the old one.
func (c taskqRedis) XGroupDelConsumer(ctx context.Context, stream, group, consumer string) *redisv8.IntCmd {
	if err := c.giveBack(context.WithoutCancel(ctx), stream, group, consumer); err != nil {
		cmd := redisv8.NewIntCmd(ctx)
		cmd.SetErr(fmt.Errorf("queue: give back the messages of consumer %s: %w", consumer, err))
		return cmd // keep the consumer (and its messages) rather than lose them
	}
	return c.Client.XGroupDelConsumer(ctx, stream, group, consumer)
}

func (c taskqRedis) giveBack(ctx context.Context, stream, group, consumer string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pending, err := c.XPendingExt(ctx, &redisv8.XPendingExtArgs{
			Stream: stream, Group: group, Start: "-", End: "+", Count: 100, Consumer: consumer,
		}).Result()
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		for _, p := range pending {
			msgs, err := c.XRangeN(ctx, stream, p.ID, p.ID, 1).Result()
			if err != nil {
				return err
			}
			pipe := c.Client.TxPipeline()
			pipe.XAck(ctx, stream, group, p.ID)
			if len(msgs) == 1 {
				pipe.XDel(ctx, stream, p.ID)
				pipe.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: msgs[0].Values})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
}

// XReadGroup runs a blocking read (taskq's fetcher waiting for messages) on the blockingReader,
// so that it ends as soon as ctx (the consumer's) does.
func (c taskqRedis) XReadGroup(ctx context.Context, a *redisv8.XReadGroupArgs) *redisv8.XStreamSliceCmd {
	if a.Block <= 0 || c.reads == nil {
		return c.Client.XReadGroup(ctx, a)
	}
	return c.reads.read(ctx, a)
}

// blockingReader runs taskq's blocking stream reads on a connection of its own, whose Redis
// client id it knows, and ends a read the moment the consumer's context ends, with CLIENT
// UNBLOCK from another connection; the next read it is asked for then tells taskq's fetcher to
// stop. taskq stops a consumer's fetcher before its workers, and while the fetcher sat in its
// read (up to WaitTimeout) every idle worker spun in its wait loop (the stop channel closed, the
// workers not yet told to stop): 50 workers kept both cores busy for up to a second at each
// stop. CLIENT UNBLOCK ends the read as a timeout would, inside Redis: either the read already
// took its messages, and its reply carries them (the read is never abandoned halfway, so nothing
// is left pending under the consumer unseen), or it took none. Handlers' contexts are not
// touched. One per lane: taskq runs one fetcher per lane.
//
// A read takes a message for every slot of the consumer that is free (freeSlots), not just the
// one taskq asks for: taskq's fetcher hands them out one by one, and a drain costs a read for
// every few messages instead of one each. It takes no more than the free slots (or the one taskq
// asks for when none is), so a busy consumer holds no more messages than with taskq's own count,
// and a message taken does not wait for a slot while another consumer's are free. (A slot that
// has just taken a message from taskq's buffer counts as free until it starts it, an instant;
// a read then may take one message more, which waits as taskq's own one-ahead message does.)
type blockingReader struct {
	rdb  *redisv8.Client // for CLIENT UNBLOCK, and the pool the connection comes from
	hook redisv8.Hook    // added to the connection, when set (command counts)
	// freeSlots, when set, tells how many of the consumer's slots could start a message now.
	freeSlots atomic.Pointer[func() int]

	mu   sync.Mutex // one read at a time on conn
	conn *redisv8.Conn
	id   int64 // conn's client id

	stopOnce sync.Once
	stopped  chan struct{} // closed once the fetcher was told to stop
}

func newBlockingReader(rdb *redisv8.Client, hook redisv8.Hook) *blockingReader {
	return &blockingReader{rdb: rdb, hook: hook, stopped: make(chan struct{})}
}

// errStopFetching is taskq's own word for "this queue does not fetch" (what its in-memory queue
// answers): a fetcher given it marks the consumer as having no fetcher and returns. The package
// that defines it is internal to taskq, so it is taken from the in-memory queue's answer.
var errStopFetching = func() error {
	_, err := (&memqueue.Queue{}).ReserveN(context.Background(), 0, 0)
	return err
}()

func (r *blockingReader) read(ctx context.Context, a *redisv8.XReadGroupArgs) *redisv8.XStreamSliceCmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		return r.stopFetching(ctx)
	}
	if err := r.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return r.stopFetching(ctx) // the consumer stopped while the connection was set up
		}
		cmd := redisv8.NewXStreamSliceCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	unblocked := make(chan struct{})
	readDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		r.unblock(readDone)
	})
	if free := r.freeSlots.Load(); free != nil {
		if n := int64((*free)()); n > a.Count {
			sized := *a
			sized.Count = n
			a = &sized
		}
	}
	// The read itself never sees ctx's cancellation: it ends through CLIENT UNBLOCK, with the
	// reply Redis gives it.
	cmd := r.conn.XReadGroup(context.WithoutCancel(ctx), a)
	close(readDone)
	if !stop() {
		<-unblocked // an unblock is under way: let it end before the next read starts
	}
	if err := cmd.Err(); err != nil && !errors.Is(err, redisv8.Nil) {
		r.closeConn() // a broken connection: a new one (and id) for the next read
	}
	return cmd
}

// stopFetching answers a read asked for while the consumer is stopping: its fetcher stops now,
// before taskq closes the workers' stop channel, so that they have no fetcher to wait for and
// never spin.
func (r *blockingReader) stopFetching(ctx context.Context) *redisv8.XStreamSliceCmd {
	cmd := redisv8.NewXStreamSliceCmd(ctx)
	cmd.SetErr(errStopFetching)
	r.stopOnce.Do(func() { close(r.stopped) })
	return cmd
}

// waitStopped returns once the fetcher was told to stop (its read after the consumer's context
// ended), or after timeout: a fetcher busy elsewhere (handing a message to a worker, backing off
// after an error) is stopped by taskq itself.
func (r *blockingReader) waitStopped(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.stopped:
		// The fetcher returns from its loop right after; until it has, taskq's stop would make
		// the idle workers spin, and they would starve it. It needs microseconds.
		time.Sleep(fetcherExitPause)
	case <-t.C:
	}
}

// fetcherExitPause is how long a stopping consumer leaves a fetcher told to stop to return.
const fetcherExitPause = 2 * time.Millisecond

// connect opens the reader's connection and learns its client id, unless it has one.
func (r *blockingReader) connect(ctx context.Context) error {
	if r.conn != nil {
		return nil
	}
	conn := r.rdb.Conn(context.Background())
	if r.hook != nil {
		conn.AddHook(r.hook)
	}
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("queue: client id of the blocking reads' connection: %w", err)
	}
	r.conn, r.id = conn, id
	return nil
}

// unblock ends the read under way on the reader's connection, from another connection. The
// read may not have reached Redis yet (CLIENT UNBLOCK then finds nothing to end): it tries
// again until the read has returned.
func (r *blockingReader) unblock(readDone <-chan struct{}) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n, err := r.rdb.ClientUnblock(ctx, r.id).Result()
		cancel()
		if err == nil && n == 1 {
			return
		}
		select {
		case <-readDone:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (r *blockingReader) closeConn() {
	if r.conn != nil {
		_ = r.conn.Close()
		r.conn = nil
	}
}

// Close gives the reader's connection back to the pool.
func (r *blockingReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeConn()
}

// commandCounter is a go-redis v8 hook that tells count how many commands each call sent.
type commandCounter struct{ count func(n int) }

func (c commandCounter) BeforeProcess(ctx context.Context, _ redisv8.Cmder) (context.Context, error) {
	c.count(1)
	return ctx, nil
}

func (commandCounter) AfterProcess(context.Context, redisv8.Cmder) error { return nil }

func (c commandCounter) BeforeProcessPipeline(ctx context.Context, cmds []redisv8.Cmder) (context.Context, error) {
	c.count(len(cmds))
	return ctx, nil
}

func (commandCounter) AfterProcessPipeline(context.Context, []redisv8.Cmder) error { return nil }
