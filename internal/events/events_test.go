package events

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
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
