package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

// durableLog watches a store's syncs and knows how much of its log a crash keeps for sure: the
// frames written when the last successful sync began (what is written during a sync may or may
// not be in it; the zeros the log is extended with are not frames).
type durableLog struct {
	mu      sync.Mutex
	durable int64
	syncs   atomic.Int64
}

func (d *durableLog) hook(f *os.File, end int64) error {
	if err := syncData(f); err != nil {
		return err
	}
	d.syncs.Add(1)
	d.mu.Lock()
	d.durable = max(d.durable, end)
	d.mu.Unlock()
	return nil
}

func (d *durableLog) size() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.durable
}

// crashCopy copies dir as a crash would leave it: nothing of the log but what is surely synced.
func crashCopy(t *testing.T, dir string, walBytes int64) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		if _, ok := parseWALName(e.Name()); ok {
			// What follows the synced frames reads as zeros: the log's own extension, or
			// frames whose bytes never reached the disk.
			require.GreaterOrEqual(t, int64(len(data)), walBytes)
			clear(data[walBytes:])
		}
		require.NoError(t, os.WriteFile(filepath.Join(out, e.Name()), data, 0o644))
	}
	return out
}

func unitVector(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// Writers upsert at once and share syncs; at any moment, a crash keeps every upsert that had
// returned: taken mid-run, a copy of the directory with the log cut to what was surely synced
// holds all of them. The syncs are fewer than the writes (they were shared).
func TestGroupCommitKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	const dim, writers, perWriter = 8, 6, 60
	ctx := context.Background()
	dir := t.TempDir()
	quietLog := WithLogger(slog.New(slog.DiscardHandler))
	s, err := Open(dir, dim, quietLog)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	d := &durableLog{}
	s.syncFile = d.hook

	var ackMu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perWriter {
				doc := fmt.Sprintf("doc-%d-%d", w, i)
				recs := make([]vector.Record, 1+rng.IntN(3))
				for j := range recs {
					recs[j] = vector.Record{ID: vector.ChunkID(doc, j), DocumentID: doc, SourceID: "src", ChunkIndex: j, Vector: unitVector(rng, dim)}
				}
				if err := s.Upsert(ctx, recs); err != nil {
					t.Error(err)
					return
				}
				// The worker's pattern: drop chunks beyond the new count (nothing here).
				if err := s.DeleteDocument(ctx, doc, len(recs)); err != nil {
					t.Error(err)
					return
				}
				ackMu.Lock()
				acked = append(acked, recs[0].ID)
				ackMu.Unlock()
			}
		})
	}

	check := func() {
		// What had returned first, then the log as synced by then: every acknowledged frame was
		// synced before its call returned, so it lies within.
		ackMu.Lock()
		want := append([]string(nil), acked...)
		ackMu.Unlock()
		copyDir := crashCopy(t, dir, d.size())
		c, err := Open(copyDir, dim, quietLog)
		require.NoError(t, err)
		defer c.Close()
		c.mu.RLock()
		defer c.mu.RUnlock()
		for _, id := range want {
			_, ok := c.mem.byID[id]
			require.True(t, ok, "acknowledged upsert %s is not in the crashed copy", id)
		}
	}
	for range 5 {
		check()
	}
	wg.Wait()
	check()
	require.Len(t, acked, writers*perWriter)
	n, err := s.Count(ctx, vector.Filter{})
	require.NoError(t, err)
	require.Positive(t, n)
	require.Less(t, d.syncs.Load(), int64(writers*perWriter), "every write synced alone: no group commit")
}

// A delete logged while an upsert of the same document waits for its sync is not skipped as a
// no-op: it is applied after the upsert, as a replay applies it.
func TestDeleteAfterPendingUpsertIsApplied(t *testing.T) {
	t.Parallel()
	const dim = 4
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, dim, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	// Hold the sync of the upsert until the delete has been logged.
	release := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{})
	s.syncFile = func(f *os.File, _ int64) error {
		once.Do(func() { close(entered); <-release })
		return f.Sync()
	}
	rec := vector.Record{ID: vector.ChunkID("doc", 0), DocumentID: "doc", SourceID: "src", Vector: []float32{1, 0, 0, 0}}
	upserted := make(chan error, 1)
	go func() { upserted <- s.Upsert(ctx, []vector.Record{rec}) }()
	<-entered
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteDocument(ctx, "doc", 0) }()
	// The delete is logged (appended) before the held sync ends.
	require.Eventually(t, func() bool {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		return s.appended == 2
	}, 10*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-upserted)
	require.NoError(t, <-deleted)
	n, err := s.Count(ctx, vector.Filter{})
	require.NoError(t, err)
	require.Zero(t, n)

	require.NoError(t, s.Close())
	s, err = Open(dir, dim, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	n, err = s.Count(ctx, vector.Filter{})
	require.NoError(t, err)
	require.Zero(t, n)
}

// BenchmarkUpsertWriters: upserts of 7 chunks (384 dimensions, the hash embedder's) from 1, 2
// and 4 writers at once, each acknowledged only once synced; reports syncs per upsert (1 when
// every write syncs alone) beside the time per upsert.
func BenchmarkUpsertWriters(b *testing.B) {
	const dim, chunks = 384, 7
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), dim, WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(b, err)
			defer s.Close()
			d := &durableLog{}
			s.syncFile = d.hook
			rng := rand.New(rand.NewPCG(1, 1))
			recs := make([][]vector.Record, writers)
			for w := range recs {
				for j := range chunks {
					doc := fmt.Sprintf("doc-%d", w)
					recs[w] = append(recs[w], vector.Record{ID: vector.ChunkID(doc, j), DocumentID: doc, SourceID: "src", ChunkIndex: j, Vector: unitVector(rng, dim)})
				}
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := s.Upsert(context.Background(), recs[w]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(d.syncs.Load())/float64(b.N), "syncs/upsert")
		})
	}
}

// The upserts of a vector.WriteGroup share one sync even when they reach the store one after
// another: the first waits for the rest of its group before syncing. A member the store refuses
// still counts as arrived, and a member that never comes holds the others up only for the bound.
func TestWriteGroupSharesOneSync(t *testing.T) {
	t.Parallel()
	const dim = 8
	ctx := context.Background()
	s, err := Open(t.TempDir(), dim, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	d := &durableLog{}
	s.syncFile = d.hook
	s.groupWait = time.Hour
	rng := rand.New(rand.NewPCG(1, 2))
	rec := func(doc string) []vector.Record {
		return []vector.Record{{ID: vector.ChunkID(doc, 0), DocumentID: doc, SourceID: "src", Vector: unitVector(rng, dim)}}
	}
	appended := func() uint64 {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		return s.appended
	}

	g := vector.NewWriteGroup(3)
	errc := make(chan error, 3)
	for i := range 3 {
		r := rec(fmt.Sprintf("doc-%d", i))
		go func() { errc <- s.Upsert(g.Context(ctx), r) }()
		require.Eventually(t, func() bool { return appended() == uint64(i+1) }, 5*time.Second, time.Millisecond)
		if i < 2 {
			require.Zero(t, d.syncs.Load(), "no sync before the group is complete")
		}
	}
	for range 3 {
		require.NoError(t, <-errc)
	}
	require.EqualValues(t, 1, d.syncs.Load())
	n, err := s.Count(ctx, vector.Filter{SourceIDs: []string{"src"}})
	require.NoError(t, err)
	require.Equal(t, 3, n)

	// A refused member arrives too.
	g = vector.NewWriteGroup(2)
	go func() { errc <- s.Upsert(g.Context(ctx), rec("doc-3")) }()
	require.Eventually(t, func() bool { return appended() == 4 }, 5*time.Second, time.Millisecond)
	require.Error(t, s.Upsert(g.Context(ctx), []vector.Record{{ID: "bad", DocumentID: "x", Vector: []float32{1}}}))
	require.NoError(t, <-errc)
	require.EqualValues(t, 2, d.syncs.Load())

	// A member that never comes: the other is synced after the bound.
	s.groupWait = 20 * time.Millisecond
	g = vector.NewWriteGroup(2)
	require.NoError(t, s.Upsert(g.Context(ctx), rec("doc-4")))
	require.EqualValues(t, 3, d.syncs.Load())
	n, err = s.Count(ctx, vector.Filter{SourceIDs: []string{"src"}})
	require.NoError(t, err)
	require.Equal(t, 5, n)
}
