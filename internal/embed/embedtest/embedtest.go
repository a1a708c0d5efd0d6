// Package embedtest is the conformance suite every embed.Embedder passes: shape, unit length,
// determinism, empty input, concurrent use and (where the embedder can honour it) that similar
// texts come out closer than unrelated ones. It knows only the Embedder interface.
package embedtest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

// Option adjusts the suite for an embedder that cannot honour every check.
type Option func(*config)

type config struct {
	skipSimilarity bool
}

// SkipSimilarity drops the check that similar texts are nearer than unrelated ones, for fakes
// whose vectors carry no meaning.
func SkipSimilarity() Option { return func(c *config) { c.skipSimilarity = true } }

// Texts used throughout: ordinary prose, a near paraphrase, an unrelated one, and non-Latin
// and mixed inputs to catch tokenisers that only know ASCII.
var texts = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Embedding vectors let us search documents by similarity.",
	"Postgres stores the job queue; workers claim jobs with SKIP LOCKED.",
	"Ein schneller brauner Fuchs springt über den faulen Hund.",
	"東京は日本の首都です。",
	"code: func main() { fmt.Println(\"hello\") }",
	"a",
}

// Run runs the suite. newEmbedder is called once per subtest, which may run in parallel.
func Run(t *testing.T, newEmbedder func(t *testing.T) embed.Embedder, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}

	t.Run("ShapeAndUnitLength", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		require.Positive(t, e.Dimension())
		require.NotEmpty(t, e.Fingerprint())

		vecs, err := e.Embed(context.Background(), texts)
		require.NoError(t, err)
		require.Len(t, vecs, len(texts))
		for i, v := range vecs {
			require.Len(t, v, e.Dimension(), "vector %d", i)
			requireUnit(t, v, "vector %d (%q)", i, texts[i])
		}
	})

	t.Run("EmptyInput", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		for _, in := range [][]string{nil, {}} {
			vecs, err := e.Embed(context.Background(), in)
			require.NoError(t, err)
			require.Empty(t, vecs)
		}
	})

	t.Run("EmptyTextIsUsable", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		vecs, err := e.Embed(context.Background(), []string{"", "   ", "hello world"})
		if err != nil {
			// Some servers (OpenAI itself) refuse empty input; that must be a permanent
			// error, since sending it again fails the same way.
			transient, _ := errs.IsTransient(err)
			require.False(t, transient, "empty text refused with a transient error: %v", err)
			return
		}
		require.Len(t, vecs, 3)
		// Cosine against an empty text must not produce NaN.
		for i, v := range vecs {
			require.Len(t, v, e.Dimension())
			for _, x := range v {
				require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "vector %d", i)
			}
			require.False(t, math.IsNaN(cosine(v, vecs[2])), "vector %d", i)
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		first, err := e.Embed(context.Background(), texts)
		require.NoError(t, err)
		second, err := e.Embed(context.Background(), texts)
		require.NoError(t, err)
		require.Equal(t, first, second)

		// A text's vector does not depend on its neighbours in the batch.
		alone, err := e.Embed(context.Background(), texts[1:2])
		require.NoError(t, err)
		require.Equal(t, first[1], alone[0])

		// A fresh embedder with the same settings agrees.
		again, err := newEmbedder(t).Embed(context.Background(), texts)
		require.NoError(t, err)
		require.Equal(t, first, again)
	})

	t.Run("DuplicatesInBatch", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		vecs, err := e.Embed(context.Background(), []string{texts[0], texts[2], texts[0]})
		require.NoError(t, err)
		require.Equal(t, vecs[0], vecs[2])
		require.NotEqual(t, vecs[0], vecs[1])
	})

	t.Run("SimilarCloserThanUnrelated", func(t *testing.T) {
		if cfg.skipSimilarity {
			t.Skip("embedder does not claim meaningful similarity")
		}
		t.Parallel()
		e := newEmbedder(t)
		cases := []struct{ anchor, similar, unrelated string }{
			{
				"How do I install the command line tool on Linux?",
				"Installing the command-line tool on a Linux machine",
				"Quarterly revenue grew by twelve percent in Europe.",
			},
			{
				"The vector store keeps embeddings of document chunks.",
				"Document chunks and their embeddings live in the vector store.",
				"She baked bread with rye flour and caraway seeds.",
			},
			{
				"Retry the job with exponential backoff after a timeout.",
				"After a timeout the job is retried with backoff.",
				"Der Zug nach Berlin fährt um acht Uhr ab.",
			},
		}
		for _, c := range cases {
			vecs, err := e.Embed(context.Background(), []string{c.anchor, c.similar, c.unrelated})
			require.NoError(t, err)
			near, far := cosine(vecs[0], vecs[1]), cosine(vecs[0], vecs[2])
			require.Greater(t, near, far, "%q should be nearer %q (%.3f) than %q (%.3f)",
				c.anchor, c.similar, near, c.unrelated, far)
		}
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		want, err := e.Embed(context.Background(), texts)
		require.NoError(t, err)

		const goroutines = 8
		var wg sync.WaitGroup
		errc := make(chan error, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				// Rotate the batch so goroutines ask for different things at once.
				in := append(append([]string{}, texts[g%len(texts):]...), texts[:g%len(texts)]...)
				got, err := e.Embed(context.Background(), in)
				if err != nil {
					errc <- err
					return
				}
				for i := range in {
					j := (i + g) % len(texts)
					if !equal(got[i], want[j]) {
						errc <- fmt.Errorf("goroutine %d: vector for %q differs", g, texts[j])
						return
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.Embed(ctx, texts)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func requireUnit(t *testing.T, v []float32, msgAndArgs ...any) {
	t.Helper()
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	require.InDelta(t, 1.0, math.Sqrt(sum), 1e-4, msgAndArgs...)
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
