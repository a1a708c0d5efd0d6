package embedded_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
	"github.com/pipeline-dev/pipeline/internal/vector/vectortest"
)

var quiet = embedded.WithLogger(slog.New(slog.DiscardHandler))

func TestConformance(t *testing.T) {
	t.Parallel()
	vectortest.Run(t, func(t *testing.T, dim int) vector.Store {
		s, err := embedded.Open(t.TempDir(), dim, quiet)
		require.NoError(t, err)
		return s
	})
}

// Compacting at every chance puts snapshots in the middle of concurrent writes and searches.
func TestConformanceCompactingAlways(t *testing.T) {
	t.Parallel()
	vectortest.Run(t, func(t *testing.T, dim int) vector.Store {
		s, err := embedded.Open(t.TempDir(), dim, quiet, embedded.WithCompactionThreshold(1))
		require.NoError(t, err)
		return s
	})
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	vectortest.RunPersistence(t, func(t *testing.T, dir string, dim int) (vector.Store, error) {
		s, err := embedded.Open(dir, dim, quiet)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

func TestPersistenceCompactingAlways(t *testing.T) {
	t.Parallel()
	vectortest.RunPersistence(t, func(t *testing.T, dir string, dim int) (vector.Store, error) {
		s, err := embedded.Open(dir, dim, quiet, embedded.WithCompactionThreshold(1))
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// bundle is one test's store in its own directory, with the log it writes.
type bundle struct {
	dir  string
	logs *logtest.Buffer
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return &bundle{dir: t.TempDir(), logs: &logtest.Buffer{}}
}

// open opens the bundle's store; the test closes it, or t.Cleanup does.
func (b *bundle) open(t *testing.T, opts ...embedded.Option) *embedded.Store {
	t.Helper()
	opts = append([]embedded.Option{embedded.WithLogger(slog.New(slog.NewTextHandler(b.logs, nil)))}, opts...)
	s, err := embedded.Open(b.dir, dim, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (b *bundle) wal(t *testing.T) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(b.dir, "wal-*"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one log file")
	return matches[0]
}

const dim = 8

func records(doc string, n int, seed uint64) []vector.Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	recs := make([]vector.Record, n)
	for i := range recs {
		recs[i] = vector.Record{
			ID:          vector.ChunkID(doc, i),
			SourceID:    "src-" + doc,
			DocumentID:  doc,
			ChunkIndex:  i,
			Text:        fmt.Sprintf("%s chunk %d", doc, i),
			Title:       doc,
			URI:         "https://example.com/" + doc,
			HeadingPath: "A > B",
			StartOffset: int64(i * 10),
			EndOffset:   int64(i*10 + 9),
			Vector:      unit(rng, dim),
		}
	}
	return recs
}

func unit(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	var sum float64
	for i := range v {
		x := rng.NormFloat64()
		v[i] = float32(x)
		sum += x * x
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(sum))
	}
	return v
}

// requireHolds checks that s holds exactly want.
func requireHolds(t *testing.T, s vector.Store, want []vector.Record) {
	t.Helper()
	ctx := context.Background()
	n, err := s.Count(ctx, vector.Filter{})
	require.NoError(t, err)
	require.Equal(t, len(want), n)
	for _, r := range want {
		hits, err := s.Search(ctx, r.Vector, 1, vector.Filter{DocumentIDs: []string{r.DocumentID}})
		require.NoError(t, err)
		require.Len(t, hits, 1)
		require.Equal(t, r.ID, hits[0].ID)
		require.Equal(t, r.Text, hits[0].Text)
		require.InDelta(t, 1, hits[0].Score, 1e-5)
	}
}

func TestTornTailIsCutOff(t *testing.T) {
	t.Parallel()
	first := records("doc-a", 3, 1)
	second := records("doc-b", 2, 2)

	cases := []struct {
		name string
		tear func(t *testing.T, path string)
		want []vector.Record
	}{
		{"garbage appended", func(t *testing.T, path string) {
			appendBytes(t, path, []byte("\x17\x00\x00\x00garbage from a write that never finished"))
		}, append(first, second...)},
		{"random bytes appended", func(t *testing.T, path string) {
			junk := make([]byte, 300)
			rng := rand.New(rand.NewPCG(3, 3))
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			appendBytes(t, path, junk)
		}, append(first, second...)},

		{"half a header appended", func(t *testing.T, path string) {
			appendBytes(t, path, []byte{0x10, 0})
		}, append(first, second...)},
		{"last entry cut mid-payload", func(t *testing.T, path string) {
			truncateBy(t, path, 5)
		}, first},
		{"last entry cut to its header", func(t *testing.T, path string) {
			truncateTo(t, path, frameEnd(t, path, 1)+8)
		}, first},
		{"last entry's checksum wrong", func(t *testing.T, path string) {
			flipByte(t, path, frameEnd(t, path, 1)+20)
		}, first},
		{"first entry cut", func(t *testing.T, path string) {
			truncateTo(t, path, 30)
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			s := b.open(t)
			require.NoError(t, s.Upsert(ctx, first))
			require.NoError(t, s.Upsert(ctx, second))
			require.NoError(t, s.Close())

			c.tear(t, b.wal(t))

			s = b.open(t)
			requireHolds(t, s, c.want)
			require.Contains(t, b.logs.String(), "torn end of its log")

			// Writes after the cut land after whole frames and survive the next reopen.
			third := records("doc-c", 2, 4)
			require.NoError(t, s.Upsert(ctx, third))
			require.NoError(t, s.Close())
			s = b.open(t)
			requireHolds(t, s, append(slices.Clone(c.want), third...))
		})
	}
}

// The log is extended with zeros ahead of its writes, and a closed log ends at its last frame.
// Zeros after the last frame (the extension, left by a crash, or a write whose bytes never
// reached the disk) are the log's end, not a tear: nothing is dropped or reported, and new
// writes go after the last frame.
func TestZerosAfterTheLastFrameAreTheEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := records("doc-a", 3, 1)
	b := setup(t)
	s := b.open(t)
	require.NoError(t, s.Upsert(ctx, first))
	info, err := os.Stat(b.wal(t))
	require.NoError(t, err)
	require.Greater(t, info.Size(), frameEnd(t, b.wal(t), 1), "extended ahead of the writes")
	require.NoError(t, s.Close())
	info, err = os.Stat(b.wal(t))
	require.NoError(t, err)
	require.Equal(t, frameEnd(t, b.wal(t), 1), info.Size(), "closed: ends at its last frame")

	appendBytes(t, b.wal(t), make([]byte, 3<<20))
	s = b.open(t)
	requireHolds(t, s, first)
	second := records("doc-b", 2, 2)
	require.NoError(t, s.Upsert(ctx, second))
	require.NoError(t, s.Close())
	s = b.open(t)
	requireHolds(t, s, append(slices.Clone(first), second...))
	require.NotContains(t, b.logs.String(), "torn end")
}

// A frame whose checksum matches but whose content this build cannot read is not a torn write:
// Open refuses instead of dropping acknowledged writes.
func TestUnreadableEntryFailsOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.open(t)
	require.NoError(t, s.Upsert(context.Background(), records("doc-a", 2, 1)))
	require.NoError(t, s.Close())

	payload := []byte{99, 1, 2, 3}
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	appendBytes(t, b.wal(t), append(frame, payload...))

	_, err := embedded.Open(b.dir, dim, quiet)
	require.ErrorContains(t, err, "unknown operation 99")

	// The refusal released the directory.
	truncateBy(t, b.wal(t), int64(len(frame)+len(payload)))
	s = b.open(t)
	requireHolds(t, s, records("doc-a", 2, 1))
}

func TestCompactionKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	s := b.open(t, embedded.WithCompactionThreshold(4096))

	// Rewrite the same documents many times: the log grows, the live data does not.
	var want []vector.Record
	for round := range 30 {
		want = nil
		for d := range 4 {
			recs := records(fmt.Sprintf("doc-%d", d), 5, uint64(round*10+d))
			for i := range recs {
				recs[i].Text = fmt.Sprintf("round %d", round)
			}
			require.NoError(t, s.Upsert(ctx, recs))
			want = append(want, recs...)
		}
	}
	require.NoError(t, s.DeleteDocument(ctx, "doc-3", 2))
	want = slices.DeleteFunc(want, func(r vector.Record) bool { return r.DocumentID == "doc-3" && r.ChunkIndex >= 2 })
	requireHolds(t, s, want)

	require.FileExists(t, filepath.Join(b.dir, "snapshot"))
	wal := b.wal(t)
	require.NotEqual(t, "wal-000000", filepath.Base(wal), "compaction moved to a new generation")
	require.NoError(t, s.Close())
	info, err := os.Stat(wal) // closed, it ends at its last frame
	require.NoError(t, err)
	require.Less(t, info.Size(), int64(16<<10), "the log was folded into the snapshot")

	s = b.open(t, embedded.WithCompactionThreshold(4096))
	requireHolds(t, s, want)
}

// What a crash in the middle of a compaction leaves (a temporary snapshot, a log of another
// generation) is ignored and removed.
func TestCompactionLeftoversAreRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	s := b.open(t)
	want := records("doc-a", 4, 1)
	require.NoError(t, s.Upsert(ctx, want))
	require.NoError(t, s.Close())

	require.NoError(t, os.WriteFile(filepath.Join(b.dir, "snapshot.tmp"), []byte("half a snapshot"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(b.dir, "wal-000001"), []byte("next generation"), 0o644))

	s = b.open(t)
	requireHolds(t, s, want)
	require.NoFileExists(t, filepath.Join(b.dir, "snapshot.tmp"))
	require.NoFileExists(t, filepath.Join(b.dir, "wal-000001"))
}

// A write is in the files when the call returns: a copy of the directory taken while the store
// is still open (as a crash would leave it, without Close) has everything.
func TestWritesAreOnDiskWhenCallsReturn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, threshold := range []int64{embedded.DefaultCompactionThreshold, 1} {
		t.Run(strconv.FormatInt(threshold, 10), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := b.open(t, embedded.WithCompactionThreshold(threshold))
			a := records("doc-a", 5, 1)
			c := records("doc-c", 3, 3)
			require.NoError(t, s.Upsert(ctx, a))
			require.NoError(t, s.Upsert(ctx, records("doc-b", 3, 2)))
			require.NoError(t, s.Upsert(ctx, c))
			require.NoError(t, s.DeleteDocument(ctx, "doc-a", 2))
			require.NoError(t, s.DeleteSource(ctx, "src-doc-b"))

			crashed := t.TempDir()
			entries, err := os.ReadDir(b.dir)
			require.NoError(t, err)
			for _, e := range entries {
				if e.Name() == "LOCK" {
					continue
				}
				data, err := os.ReadFile(filepath.Join(b.dir, e.Name()))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(crashed, e.Name()), data, 0o644))
			}
			copied, err := embedded.Open(crashed, dim, quiet)
			require.NoError(t, err)
			t.Cleanup(func() { _ = copied.Close() })
			requireHolds(t, copied, append(a[:2:2], c...))
		})
	}
}

const inUseMessage = "is in use by another process; run workers in-process with `pipeline dev`, or use Milvus"

func TestSecondOpenIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.open(t)

	_, err := embedded.Open(b.dir, dim, quiet)
	require.ErrorContains(t, err, "embedded vector store at "+b.dir+" "+inUseMessage)
	require.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	var inUse *embedded.InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, b.dir, inUse.Dir)

	require.NoError(t, s.Close())
	s = b.open(t)
	require.NoError(t, s.Close())
}

// The case that matters: a separate `pipeline worker` process. The test binary runs itself as
// that process.
func TestOtherProcessIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.open(t)

	out, err := openInChild(t, b.dir)
	require.Error(t, err, "child opened a held store: %s", out)
	require.Contains(t, out, inUseMessage)
	require.Contains(t, out, fmt.Sprintf("pid %d", os.Getpid()))

	require.NoError(t, s.Close())
	out, err = openInChild(t, b.dir)
	require.NoError(t, err, out)
	require.Contains(t, out, "opened")
}

const childDirEnv = "EMBEDDED_TEST_CHILD_DIR"

func openInChild(t *testing.T, dir string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildOpen$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestChildOpen is the child of TestOtherProcessIsRefused; on its own it does nothing.
func TestChildOpen(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("only run as a child process")
	}
	s, err := embedded.Open(dir, dim, quiet)
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	fmt.Println("opened")
	require.NoError(t, s.Close())
}

func TestOpenArguments(t *testing.T) {
	t.Parallel()
	_, err := embedded.Open(t.TempDir(), 0)
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	_, err = embedded.Open("", 8)
	require.ErrorIs(t, err, errs.ErrInvalidArgument)

	// A directory that is something else is not taken over.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.json"), []byte(`{"format":"other"}`), 0o644))
	_, err = embedded.Open(dir, 8, quiet)
	require.ErrorContains(t, err, "is not an embedded vector store")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).open(t)
	good := records("doc-a", 1, 1)[0]

	for name, mutate := range map[string]func(r *vector.Record){
		"zero vector": func(r *vector.Record) { r.Vector = make([]float32, dim) },
		"NaN":         func(r *vector.Record) { r.Vector[3] = float32(math.NaN()) },
		"infinity":    func(r *vector.Record) { r.Vector[0] = float32(math.Inf(1)) },
		"no id":       func(r *vector.Record) { r.ID = "" },
		"negative index": func(r *vector.Record) {
			r.ChunkIndex = -1
		},
	} {
		r := good
		r.Vector = slices.Clone(good.Vector)
		mutate(&r)
		require.ErrorIs(t, s.Upsert(ctx, []vector.Record{good, r}), errs.ErrInvalidArgument, name)
	}
	n, err := s.Count(ctx, vector.Filter{})
	require.NoError(t, err)
	require.Zero(t, n)

	_, err = s.Search(ctx, good.Vector, 0, vector.Filter{})
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	_, err = s.Search(ctx, make([]float32, dim), 3, vector.Filter{})
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	require.ErrorIs(t, s.DeleteDocument(ctx, "doc-a", -1), errs.ErrInvalidArgument)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.Upsert(cancelled, []vector.Record{good}), context.Canceled)
	_, err = s.Search(cancelled, good.Vector, 3, vector.Filter{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).open(t)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is harmless")

	rec := records("doc-a", 1, 1)
	require.ErrorIs(t, s.Upsert(ctx, rec), errs.ErrFailedPrecondition)
	require.ErrorIs(t, s.DeleteSource(ctx, "x"), errs.ErrFailedPrecondition)
	_, err := s.Search(ctx, rec[0].Vector, 1, vector.Filter{})
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	_, err = s.Count(ctx, vector.Filter{})
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
}

// A record rewritten under another source or document moves in the indexes.
func TestOverwriteMovesBetweenSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).open(t)
	r := records("doc-a", 1, 1)[0]
	require.NoError(t, s.Upsert(ctx, []vector.Record{r}))
	r.SourceID = "src-other"
	require.NoError(t, s.Upsert(ctx, []vector.Record{r}))

	count := func(f vector.Filter) int {
		n, err := s.Count(ctx, f)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 0, count(vector.Filter{SourceIDs: []string{"src-doc-a"}}))
	require.Equal(t, 1, count(vector.Filter{SourceIDs: []string{"src-other"}}))
	require.NoError(t, s.DeleteSource(ctx, "src-doc-a"))
	require.Equal(t, 1, count(vector.Filter{}))
	require.NoError(t, s.DeleteSource(ctx, "src-other"))
	require.Equal(t, 0, count(vector.Filter{}))
}

// Random writes and deletes against a plain map, with compactions and reopens on the way.
func TestRandomOperationsMatchModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	opts := []embedded.Option{embedded.WithCompactionThreshold(8 << 10)}
	s := b.open(t, opts...)
	rng := rand.New(rand.NewPCG(7, 7))
	model := map[string]vector.Record{}

	check := func() {
		n, err := s.Count(ctx, vector.Filter{})
		require.NoError(t, err)
		require.Equal(t, len(model), n)
		for src := range 3 {
			source := fmt.Sprintf("src-%d", src)
			want := 0
			for _, r := range model {
				if r.SourceID == source {
					want++
				}
			}
			n, err := s.Count(ctx, vector.Filter{SourceIDs: []string{source}})
			require.NoError(t, err)
			require.Equal(t, want, n, source)
		}
		hits, err := s.Search(ctx, unit(rng, dim), 1000, vector.Filter{})
		require.NoError(t, err)
		require.Len(t, hits, len(model))
		for _, h := range hits {
			want := model[h.ID]
			require.Equal(t, want.Text, h.Text)
			require.Equal(t, want.SourceID, h.SourceID)
			for i := range want.Vector {
				require.InDelta(t, want.Vector[i], h.Vector[i], 1e-6)
			}
		}
	}

	for step := range 600 {
		switch p := rng.IntN(100); {
		case p < 60:
			batch := make([]vector.Record, 1+rng.IntN(5))
			for i := range batch {
				doc := fmt.Sprintf("doc-%d", rng.IntN(12))
				idx := rng.IntN(8)
				r := vector.Record{
					ID: vector.ChunkID(doc, idx), DocumentID: doc, ChunkIndex: idx,
					SourceID: fmt.Sprintf("src-%d", rng.IntN(3)),
					Text:     fmt.Sprintf("step %d", step),
					Vector:   unit(rng, dim),
				}
				batch[i] = r
			}
			require.NoError(t, s.Upsert(ctx, batch))
			for _, r := range batch {
				model[r.ID] = r
			}
		case p < 80:
			doc, from := fmt.Sprintf("doc-%d", rng.IntN(12)), rng.IntN(8)
			require.NoError(t, s.DeleteDocument(ctx, doc, from))
			for id, r := range model {
				if r.DocumentID == doc && r.ChunkIndex >= from {
					delete(model, id)
				}
			}
		case p < 85:
			src := fmt.Sprintf("src-%d", rng.IntN(3))
			require.NoError(t, s.DeleteSource(ctx, src))
			for id, r := range model {
				if r.SourceID == src {
					delete(model, id)
				}
			}
		case p < 88:
			require.NoError(t, s.Close())
			s = b.open(t, opts...)
		}
		check()
	}
	require.NoError(t, s.Close())
	s = b.open(t, opts...)
	check()
}

// Above the size where a scan is split across CPUs, the result is still the exact top k.
func TestLargeScanIsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n, d = 40_000, 16
	s, err := embedded.Open(t.TempDir(), d, quiet)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	rng := rand.New(rand.NewPCG(9, 9))
	recs := make([]vector.Record, n)
	for i := range recs {
		doc := fmt.Sprintf("doc-%d", i/100)
		recs[i] = vector.Record{ID: vector.ChunkID(doc, i%100), DocumentID: doc, ChunkIndex: i % 100,
			SourceID: fmt.Sprintf("src-%d", i%5), Vector: unit(rng, d)}
	}
	for batch := range slices.Chunk(recs, 10_000) {
		require.NoError(t, s.Upsert(ctx, batch))
	}

	for _, f := range []vector.Filter{{}, {SourceIDs: []string{"src-2"}}} {
		q := unit(rng, d)
		hits, err := s.Search(ctx, q, 10, f)
		require.NoError(t, err)
		require.Len(t, hits, 10)
		in := map[string]bool{}
		for _, h := range hits {
			in[h.ID] = true
		}
		floor := float64(hits[9].Score)
		for _, r := range recs {
			if in[r.ID] || (len(f.SourceIDs) > 0 && r.SourceID != f.SourceIDs[0]) {
				continue
			}
			var exact float64
			for i := range q {
				exact += float64(q[i]) * float64(r.Vector[i])
			}
			require.LessOrEqual(t, exact, floor+1e-5, "%s beats the 10th hit", r.ID)
		}
	}
}

func appendBytes(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	truncateTo(t, path, info.Size()-n)
}

func truncateTo(t *testing.T, path string, size int64) {
	t.Helper()
	require.NoError(t, os.Truncate(path, size))
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Less(t, at, int64(len(data)))
	data[at] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// frameEnd is the offset where the log's first n frames end (8-byte header: length, checksum).
func frameEnd(t *testing.T, path string, n int) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var off int64
	for range n {
		require.LessOrEqual(t, off+8, int64(len(data)))
		off += 8 + int64(binary.LittleEndian.Uint32(data[off:]))
	}
	return off
}
