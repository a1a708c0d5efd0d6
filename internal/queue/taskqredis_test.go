package queue

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	redisv8 "github.com/go-redis/redis/v8"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// TestBlockingReadEndedByItsContextLosesNothing: a blocking stream read ended by its context
// (as taskq's fetcher's read is when the consumer stops) returns either the messages it took or
// none, never takes a message without returning it: every message added while reads start and
// end at random moments is returned by one read, once, or is still waiting in the stream.
func TestBlockingReadEndedByItsContextLosesNothing(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	ctx := t.Context()
	stream, group, consumer := newStream(t, rdb, prefix), "g", "c"
	reads := newBlockingReader(rdb, nil)
	defer reads.Close()
	c := newTaskqRedis(rdb, reads, slog.Default())

	added, returned := map[string]bool{}, map[string]int{}
	var unblocked, refused int
	for i := range 150 {
		readCtx, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Duration(rand.IntN(3000))*time.Microsecond, cancel)
		addDone := make(chan string, 1)
		go func() {
			if i%3 != 0 { // most reads find the stream empty and block
				addDone <- ""
				return
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			id, _ := rdb.XAdd(context.Background(), &redisv8.XAddArgs{Stream: stream, Values: map[string]any{"i": i}}).Result()
			addDone <- id
		}()
		t0 := time.Now()
		res, err := c.XReadGroup(readCtx, &redisv8.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: 1, Block: 5 * time.Second,
		}).Result()
		<-readCtx.Done()
		require.Less(t, time.Since(t0), time.Second, "the read outlived its context")
		switch {
		case errors.Is(err, redisv8.Nil):
			unblocked++
		case errors.Is(err, errStopFetching):
			refused++ // asked for after its context ended
		default:
			require.NoError(t, err)
			for _, m := range res[0].Messages {
				returned[m.ID]++
				require.NoError(t, rdb.XAck(ctx, stream, group, m.ID).Err())
			}
		}
		if id := <-addDone; id != "" {
			added[id] = true
		}
		cancel()
	}
	// Nothing is pending under the consumer unseen: what the reads took, they returned.
	pending, err := rdb.XPending(ctx, stream, group).Result()
	require.NoError(t, err)
	require.Zero(t, pending.Count, "messages taken by a read that never returned them")
	// The rest is still waiting in the stream.
	rest, err := rdb.XReadGroup(ctx, &redisv8.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: 1000, Block: -1,
	}).Result()
	if !errors.Is(err, redisv8.Nil) {
		require.NoError(t, err)
		for _, m := range rest[0].Messages {
			returned[m.ID]++
		}
	}
	require.Len(t, returned, len(added))
	for id := range added {
		require.Equal(t, 1, returned[id], "message %s", id)
	}
	t.Logf("150 reads, %d messages: %d reads ended by their context, %d refused, the rest returned a message", len(added), unblocked, refused)
	require.Positive(t, unblocked, "no read was ended by its context")
}

// TestBlockingReadStoppedWhileConnecting: a read whose context ends while the reader is still
// setting up its connection (the consumer stopped during the fetcher's first read) tells the
// fetcher to stop, as a read asked for after the context ended does, rather than failing with
// the context's error (which taskq's fetcher would log and back off from).
func TestBlockingReadStoppedWhileConnecting(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	readCtx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reads := newBlockingReader(rdb, cancelOnCommand{cancel})
	defer reads.Close()
	c := newTaskqRedis(rdb, reads, slog.Default())

	_, err := c.XReadGroup(readCtx, &redisv8.XReadGroupArgs{
		Group: "g", Consumer: "c", Streams: []string{prefix + "stream", ">"}, Count: 1, Block: 5 * time.Second,
	}).Result()
	require.ErrorIs(t, err, errStopFetching)
	select {
	case <-reads.stopped:
	default:
		t.Fatal("the reader does not say its fetcher was told to stop")
	}
}

// cancelOnCommand is a go-redis v8 hook that ends a context whenever its connection sends a
// command, and fails the command with the context's error.
type cancelOnCommand struct{ cancel context.CancelFunc }

func (h cancelOnCommand) BeforeProcess(ctx context.Context, _ redisv8.Cmder) (context.Context, error) {
	h.cancel()
	return ctx, ctx.Err()
}

func (cancelOnCommand) AfterProcess(context.Context, redisv8.Cmder) error { return nil }

func (h cancelOnCommand) BeforeProcessPipeline(ctx context.Context, _ []redisv8.Cmder) (context.Context, error) {
	h.cancel()
	return ctx, ctx.Err()
}

func (cancelOnCommand) AfterProcessPipeline(context.Context, []redisv8.Cmder) error { return nil }

// newClientV8 is a go-redis v8 client (taskq's) on the test Redis, closed at the test's end, and
// a key prefix of the test's own.
func newClientV8(t *testing.T) (*redisv8.Client, string) {
	t.Helper()
	_, prefix := redistest.New(t)
	opt, err := redisv8.ParseURL(redistest.URL())
	require.NoError(t, err)
	rdb := redisv8.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, prefix
}

// newStream creates a stream under prefix with a consumer group "g" reading what comes after
// it, removed at the test's end.
func newStream(t *testing.T, rdb *redisv8.Client, prefix string) string {
	t.Helper()
	stream := prefix + "stream"
	require.NoError(t, rdb.XGroupCreateMkStream(t.Context(), stream, "g", "$").Err())
	t.Cleanup(func() { rdb.Del(context.Background(), stream) })
	return stream
}

// TestAckDeletesTheEntryInTheSameRoundTrip: taskq acknowledges a handled message with XAck and
// then deletes it with XDel; through taskqRedis the acknowledgement deletes it too, in one round
// trip, and the XDel that follows sends nothing. An XDel of anything else still goes to Redis.
func TestAckDeletesTheEntryInTheSameRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	ctx := t.Context()
	stream, group, consumer := newStream(t, rdb, prefix), "g", "c"
	var trips roundTrips
	counted := redisv8.NewClient(rdb.Options())
	t.Cleanup(func() { _ = counted.Close() })
	counted.AddHook(&trips)
	c := newTaskqRedis(counted, nil, slog.Default())

	var ids []string
	for i := range 3 {
		id, err := rdb.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: map[string]any{"i": i}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	_, err := rdb.XReadGroup(ctx, &redisv8.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: 3, Block: -1}).Result()
	require.NoError(t, err)

	// As redisq's Delete does it, for the first message.
	n, err := c.XAck(ctx, stream, group, ids[0]).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = c.XDel(ctx, stream, ids[0]).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	c.flushAcks()
	require.EqualValues(t, 1, trips.n.Load(), "the acknowledgement and the delete share one round trip, and the XDel after it sends nothing")

	left, err := rdb.XRange(ctx, stream, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, left, 2, "the acknowledged entry is gone from the stream, the others are not")
	require.Equal(t, ids[1], left[0].ID)
	pending, err := rdb.XPending(ctx, stream, group).Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, pending.Count, "the acknowledged entry is no longer pending")

	// An entry not acknowledged through c is deleted by Redis, and a second XDel of the
	// acknowledged one goes to Redis too (and finds nothing).
	n, err = c.XDel(ctx, stream, ids[1], ids[0]).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.EqualValues(t, 2, trips.n.Load())
}

// roundTrips counts the calls a go-redis v8 client makes to Redis: a command or a pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) BeforeProcess(ctx context.Context, _ redisv8.Cmder) (context.Context, error) {
	r.n.Add(1)
	return ctx, nil
}

func (*roundTrips) AfterProcess(context.Context, redisv8.Cmder) error { return nil }

func (r *roundTrips) BeforeProcessPipeline(ctx context.Context, _ []redisv8.Cmder) (context.Context, error) {
	r.n.Add(1)
	return ctx, nil
}

func (*roundTrips) AfterProcessPipeline(context.Context, []redisv8.Cmder) error { return nil }

// holdFirstPipeline holds a client's first pipeline until released, and counts its round trips.
type holdFirstPipeline struct {
	roundTrips
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *holdFirstPipeline) BeforeProcessPipeline(ctx context.Context, cmds []redisv8.Cmder) (context.Context, error) {
	if h.held.CompareAndSwap(false, true) {
		close(h.entered)
		<-h.release
	}
	return h.roundTrips.BeforeProcessPipeline(ctx, cmds)
}

// TestAcksGoInTheBackgroundAndShareARoundTrip: a slot's acknowledgement returns at once, while
// its round trip is under way (held here), so the slot can take its next message; slots that
// acknowledge meanwhile send theirs together in the next round trip. Once flushed, every entry
// is acknowledged and deleted, and taskq's XDel after each sends nothing.
func TestAcksGoInTheBackgroundAndShareARoundTrip(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	ctx := t.Context()
	stream, group := newStream(t, rdb, prefix), "g"
	hook := &holdFirstPipeline{entered: make(chan struct{}), release: make(chan struct{})}
	counted := redisv8.NewClient(rdb.Options())
	t.Cleanup(func() { _ = counted.Close() })
	counted.AddHook(hook)
	c := newTaskqRedis(counted, nil, slog.Default())

	ids := make([]string, 4)
	for i := range ids {
		id, err := rdb.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: map[string]any{"i": i}}).Result()
		require.NoError(t, err)
		ids[i] = id
	}
	_, err := rdb.XReadGroup(ctx, &redisv8.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: 4, Block: -1}).Result()
	require.NoError(t, err)

	ack := func(i int) {
		n, err := c.XAck(ctx, stream, group, ids[i]).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		n, err = c.XDel(ctx, stream, ids[i]).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
	ack(0)
	<-hook.entered // the first round trip is under way, and held
	for i := 1; i < len(ids); i++ {
		ack(i) // returns although nothing can reach Redis now
	}
	c.acks.mu.Lock()
	waiting := len(c.acks.waiting)
	c.acks.mu.Unlock()
	require.Equal(t, len(ids)-1, waiting, "the acknowledgements made meanwhile wait for the next round trip")
	pending, err := rdb.XPending(ctx, stream, group).Result()
	require.NoError(t, err)
	require.EqualValues(t, len(ids), pending.Count, "nothing is acknowledged yet")

	close(hook.release)
	c.flushAcks()
	require.EqualValues(t, 2, hook.n.Load(), "one round trip for the first acknowledgement, one for the three made meanwhile")
	left, err := rdb.XLen(ctx, stream).Result()
	require.NoError(t, err)
	require.Zero(t, left, "every acknowledged entry is deleted")
	pending, err = rdb.XPending(ctx, stream, group).Result()
	require.NoError(t, err)
	require.Zero(t, pending.Count, "every entry is acknowledged")
}

// TestFailedAckIsLogged: an acknowledgement that fails in the background is logged (its message
// stays pending, for taskq to deliver again), and does not hold up the others.
func TestFailedAckIsLogged(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	ctx := t.Context()
	stream, notStream := newStream(t, rdb, prefix), prefix+"not-a-stream"
	require.NoError(t, rdb.Set(ctx, notStream, "x", time.Minute).Err())
	var logged logtest.Buffer
	c := newTaskqRedis(rdb, nil, slog.New(slog.NewTextHandler(&logged, nil)))
	id, err := rdb.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: map[string]any{"i": 0}}).Result()
	require.NoError(t, err)
	_, err = rdb.XReadGroup(ctx, &redisv8.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
	require.NoError(t, err)

	// A key of the wrong type: Redis refuses the acknowledgement.
	_, err = c.XAck(ctx, notStream, "g", id).Result()
	require.NoError(t, err, "the acknowledgement returns before Redis has answered")
	_, err = c.XAck(ctx, stream, "g", id).Result()
	require.NoError(t, err)
	c.flushAcks()
	require.Contains(t, logged.String(), "queue: acknowledge a handled message")
	require.Contains(t, logged.String(), notStream)
	require.Contains(t, logged.String(), "WRONGTYPE")
	left, err := rdb.XLen(ctx, stream).Result()
	require.NoError(t, err)
	require.Zero(t, left, "the other acknowledgement went through")
}

// TestReadTakesAMessageForEveryFreeSlot: a fetcher's read takes as many messages as the
// consumer has free slots, or the one taskq asks for when none is free.
func TestReadTakesAMessageForEveryFreeSlot(t *testing.T) {
	t.Parallel()
	rdb, prefix := newClientV8(t)
	ctx := t.Context()
	stream, group := newStream(t, rdb, prefix), "g"
	reads := newBlockingReader(rdb, nil)
	defer reads.Close()
	c := newTaskqRedis(rdb, reads, slog.Default())
	for i := range 6 {
		require.NoError(t, rdb.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: map[string]any{"i": i}}).Err())
	}

	var free atomic.Int64
	count := func() int { return int(free.Load()) }
	reads.freeSlots.Store(&count)
	read := func() int {
		t.Helper()
		// As taskq's fetcher asks: one message, blocking.
		res, err := c.XReadGroup(ctx, &redisv8.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: 1, Block: time.Second}).Result()
		require.NoError(t, err)
		return len(res[0].Messages)
	}
	free.Store(3)
	require.Equal(t, 3, read(), "a message for each of the three free slots")
	free.Store(0)
	require.Equal(t, 1, read(), "with no slot free, the one taskq asks for")
	free.Store(5)
	require.Equal(t, 2, read(), "what is left, fewer than the free slots")
}
