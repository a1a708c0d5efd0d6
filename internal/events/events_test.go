package events

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/redistest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func recv(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case <-s.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no notice within 5s")
	}
}

func TestLocalDeliveryCoalesces(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	b := New(rdb, prefix, quiet())
	id := uuid.New()
	s := b.Subscribe(id)
	other := b.Subscribe(uuid.New())
	for v := int64(1); v <= 5; v++ {
		b.Publish(context.Background(), id, v) // never blocks, though nobody reads yet
	}
	recv(t, s)
	select {
	case <-s.C:
		t.Fatal("five notices should coalesce into one wake-up")
	default:
	}
	select {
	case <-other.C:
		t.Fatal("a watcher of another job was woken")
	default:
	}
	s.Close()
	s.Close()
	other.Close()
	require.Zero(t, b.Watchers())
}

func TestRemoteReplicaHearsChange(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	publisher := New(rdb, prefix, quiet())
	replica := New(rdb, prefix, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- replica.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	require.NoError(t, replica.Ready(ctx))

	id := uuid.New()
	s := replica.Subscribe(id)
	defer s.Close()
	publisher.Publish(ctx, id, 2)
	recv(t, s)
}

// subscribed is a bus of its own with a subscription to a new job, closed when the test ends.
func subscribed(t *testing.T) (*Bus, uuid.UUID, *Subscription) {
	t.Helper()
	rdb, prefix := redistest.New(t)
	b := New(rdb, prefix, quiet())
	id := uuid.New()
	s := b.Subscribe(id)
	t.Cleanup(s.Close)
	return b, id, s
}

// TestOfferCarriesTheState: an offered state reaches local watchers with its version; a notice
// for a version already announced (this process's own, back from Redis) wakes nobody, and an
// older offer never replaces a newer one.
func TestOfferCarriesTheState(t *testing.T) {
	t.Parallel()
	b, id, s := subscribed(t)

	b.Offer(id, 3, "state 3")
	recv(t, s)
	announced, snap, at := s.Latest()
	require.EqualValues(t, 3, announced)
	require.Equal(t, "state 3", snap)
	require.EqualValues(t, 3, at)

	b.deliver(id, 3, nil) // the same version again, as from Redis
	b.Offer(id, 2, "state 2")
	select {
	case <-s.C:
		t.Fatal("nothing new was announced")
	default:
	}
	_, snap, _ = s.Latest()
	require.Equal(t, "state 3", snap)

	b.Publish(context.Background(), id, 4) // a change without a state: watchers must read
	recv(t, s)
	announced, snap, at = s.Latest()
	require.EqualValues(t, 4, announced)
	require.Equal(t, "state 3", snap)
	require.EqualValues(t, 3, at)
	require.NoError(t, b.Flush(t.Context()))
}

// TestOfferedKeepsEveryState: states offered faster than the watcher reads are all kept, in
// version order, for the watcher to send each (up to maxOffered; a watcher further behind loses
// the oldest); an older offer after a newer one is not kept.
func TestOfferedKeepsEveryState(t *testing.T) {
	t.Parallel()
	b, id, s := subscribed(t)

	for v := int64(1); v <= 4; v++ {
		b.Offer(id, v, v*10)
	}
	b.Offer(id, 3, 30) // late and older: not kept
	recv(t, s)
	announced, offered := s.Offered(1)
	require.EqualValues(t, 4, announced)
	require.Equal(t, []Offer{{2, int64(20)}, {3, int64(30)}, {4, int64(40)}}, offered, "after version 1, in order")
	_, offered = s.Offered(0)
	require.Empty(t, offered, "each state is handed out once")

	b.Publish(context.Background(), id, 5) // no state: the watcher must read
	recv(t, s)
	announced, offered = s.Offered(4)
	require.EqualValues(t, 5, announced)
	require.Empty(t, offered)

	for v := int64(6); v < 6+maxOffered+10; v++ {
		b.Offer(id, v, v)
	}
	_, offered = s.Offered(5)
	require.Len(t, offered, maxOffered)
	require.EqualValues(t, 16, offered[0].Version, "the oldest went")
	require.EqualValues(t, 5+maxOffered+10, offered[maxOffered-1].Version)
	require.NoError(t, b.Flush(t.Context()))
}

// TestPublishDoesNotWaitForRedis: with Redis unreachable, Publish still returns at once and
// local watchers hear the change; Flush gives up when its context ends.
func TestPublishDoesNotWaitForRedis(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	b := New(rdb, "test:", quiet())
	id := uuid.New()
	s := b.Subscribe(id)
	defer s.Close()
	for v := int64(1); v <= 100; v++ {
		b.Publish(context.Background(), id, v)
	}
	recv(t, s)
	announced, _, _ := s.Latest()
	require.EqualValues(t, 100, announced)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.Flush(ctx), "the sender gives up on each round after its timeout")
}

// TestNoticesReachRedisInOrder: notices published in a burst are sent in publishing order,
// several to a message (at most maxPerMessage), and a replica hears every one.
func TestNoticesReachRedisInOrder(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	b := New(rdb, prefix, quiet())
	replica := New(rdb, prefix, quiet())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = replica.Run(ctx) }()
	require.NoError(t, replica.Ready(t.Context()))
	ps := rdb.Subscribe(t.Context(), b.channel)
	defer ps.Close()
	_, err := ps.Receive(t.Context())
	require.NoError(t, err)
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	subs := []*Subscription{replica.Subscribe(ids[0]), replica.Subscribe(ids[1])}
	const n = 600
	for v := int64(1); v <= n; v++ {
		b.Publish(context.Background(), ids[v%2], v)
	}
	require.NoError(t, b.Flush(t.Context()))
	var got []int64
	messages := 0
	for len(got) < n {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		msg, err := ps.ReceiveMessage(ctx)
		cancel()
		require.NoError(t, err)
		messages++
		notices := strings.Fields(msg.Payload)
		require.LessOrEqual(t, len(notices), maxPerMessage)
		for _, m := range notices {
			id, v, err := parse(m)
			require.NoError(t, err)
			require.Equal(t, ids[v%2], id)
			got = append(got, v)
		}
	}
	for i, v := range got {
		require.EqualValues(t, i+1, v, "in publishing order")
	}
	require.Less(t, messages, n/2, "notices share messages")
	for i, s := range subs {
		require.Eventually(t, func() bool {
			announced, _, _ := s.Latest()
			return announced == n-int64(i)
		}, 5*time.Second, time.Millisecond, "the replica heard the last notice of job %d", i)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	got, v, err := parse(id.String() + ":42")
	require.NoError(t, err)
	require.Equal(t, id, got)
	require.EqualValues(t, 42, v)
	for _, bad := range []string{"", "x", id.String(), "nope:1", id.String() + ":x"} {
		_, _, err := parse(bad)
		require.Error(t, err, bad)
	}
}

// countingHandler counts the records logged at Warn.
type countingHandler struct {
	slog.Handler
	warns *atomic.Int32
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}

// TestRedisDownWarnsOnce: while Redis refuses, notices published one after another are warned
// about once, not once per round of sending.
func TestRedisDownWarnsOnce(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 20 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	warns := &atomic.Int32{}
	b := New(rdb, "test:", slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), warns}))
	id := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for v := int64(1); v <= 3; v++ {
		b.Publish(context.Background(), id, v)
		require.NoError(t, b.Flush(ctx)) // one failed round per notice
	}
	require.EqualValues(t, 1, warns.Load(), "one warning, not one per round")
}
