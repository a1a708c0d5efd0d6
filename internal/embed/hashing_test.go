package embed_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/embed/embedtest"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

func newHashing(t testing.TB, dim int) *embed.Hashing {
	t.Helper()
	h, err := embed.NewHashing(embed.HashingConfig{Dimension: dim})
	require.NoError(t, err)
	return h
}

func TestHashingConformance(t *testing.T) {
	t.Parallel()
	embedtest.Run(t, func(t *testing.T) embed.Embedder { return newHashing(t, 0) })
}

func TestHashingConformanceSmallDimension(t *testing.T) {
	t.Parallel()
	// Many collisions at 64 buckets, yet still the same guarantees.
	embedtest.Run(t, func(t *testing.T) embed.Embedder { return newHashing(t, 64) })
}

func TestHashingConfig(t *testing.T) {
	t.Parallel()

	h := newHashing(t, 0)
	require.Equal(t, 384, h.Dimension())
	require.Equal(t, "hash-v1/384", h.Fingerprint())
	require.Equal(t, "hash-v1/1024", newHashing(t, 1024).Fingerprint())

	for _, dim := range []int{-1, 7, 4097} {
		_, err := embed.NewHashing(embed.HashingConfig{Dimension: dim})
		require.ErrorIs(t, err, errs.ErrInvalidArgument, "dimension %d", dim)
		require.ErrorContains(t, err, "dimension")
	}
	for _, dim := range []int{8, 4096} {
		_, err := embed.NewHashing(embed.HashingConfig{Dimension: dim})
		require.NoError(t, err, "dimension %d", dim)
	}
}

// TestHashingGolden pins the output: stored vectors stay comparable with new ones only while
// this holds. If it fails on purpose (features changed), bump hashingVersion and the digests.
func TestHashingGolden(t *testing.T) {
	t.Parallel()
	h := newHashing(t, 0)
	vecs, err := h.Embed(context.Background(), []string{
		"The quick brown fox jumps over the lazy dog.",
		"Ein schneller brauner Fuchs springt über den faulen Hund. 東京は日本の首都です。",
		"",
	})
	require.NoError(t, err)
	want := []string{
		"7f5b1542c606077d",
		"55dd58459e578a91",
		"abb356ed13c37b1f",
	}
	for i, v := range vecs {
		require.Equal(t, want[i], digest(v), "vector %d", i)
	}
}

func digest(v []float32) string {
	sum := sha256.New()
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		sum.Write(b[:])
	}
	return hex.EncodeToString(sum.Sum(nil))[:16]
}

func TestHashingTokenisation(t *testing.T) {
	t.Parallel()
	h := newHashing(t, 0)
	embedOne := func(text string) []float32 {
		vecs, err := h.Embed(context.Background(), []string{text})
		require.NoError(t, err)
		return vecs[0]
	}

	// Case, punctuation and spacing do not matter; word order does not either (bag of words).
	base := embedOne("hello world")
	require.Equal(t, base, embedOne("Hello, WORLD!"))
	require.Equal(t, base, embedOne("  hello\n\tworld  "))
	require.Equal(t, base, embedOne("world hello"))
	require.Equal(t, embedOne("über öl"), embedOne("ÜBER Öl"))
	require.NotEqual(t, base, embedOne("hello worlds"))

	// Word pieces overlap: an inflection is nearer than an unrelated word.
	require.Greater(t, dot(embedOne("embedding"), embedOne("embedded")),
		dot(embedOne("embedding"), embedOne("postgres")))

	// Repetition is damped: ten times the same word is still mostly that word, and a text
	// repeating one word does not drown out the other.
	mixed := embedOne(strings.Repeat("fox ", 10) + "dog")
	require.Greater(t, dot(mixed, embedOne("dog")), 0.2)

	// No word characters: the constant unit vector, the same for all such texts.
	empty := embedOne("")
	require.Equal(t, empty, embedOne(" ... !!! 🎉 "))
	for _, x := range empty {
		require.InDelta(t, 1/math.Sqrt(384), x, 1e-7)
	}
}

func TestHashingCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newHashing(t, 0).Embed(ctx, make([]string, 1000))
	require.ErrorIs(t, err, context.Canceled)
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// benchText is a typical chunk: about 1 KB of English prose with some punctuation and code.
var benchText = strings.Repeat("The worker claims a job, fetches the page, converts it to Markdown, "+
	"splits it into chunks and embeds each chunk (see internal/embed). ", 8)

func BenchmarkHashing(b *testing.B) {
	h := newHashing(b, 0)
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = benchText
	}
	ctx := context.Background()
	b.SetBytes(int64(len(texts) * len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Embed(ctx, texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
}

func BenchmarkHashingNonLatin(b *testing.B) {
	h := newHashing(b, 0)
	text := strings.Repeat("東京は日本の首都です。Быстрая коричневая лиса прыгает через ленивую собаку. ", 8)
	ctx := context.Background()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Embed(ctx, []string{text}); err != nil {
			b.Fatal(err)
		}
	}
}
