package embed

import (
	"context"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// HashingConfig configures the hashing embedder.
type HashingConfig struct {
	// Dimension is the vector length, between 8 and 4096. Defaults to 384.
	Dimension int
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c HashingConfig) WithDefaults() HashingConfig {
	if c.Dimension == 0 {
		c.Dimension = 384
	}
	return c
}

// Validate reports a field outside its range.
func (c HashingConfig) Validate() error {
	if c.Dimension < 8 || c.Dimension > 4096 {
		return errs.InvalidArgument("dimension", "must be between 8 and 4096, got %d", c.Dimension)
	}
	return nil
}

// Hashing embeds texts by feature hashing, with no model and no network: every lower-cased word
// (a run of Unicode letters, digits and marks) and every character 3-gram and 4-gram of the word
// padded with boundary markers is hashed to a bucket and a sign, the signed counts are damped
// with sqrt(|count|) so repeated words do not dominate, and the vector is L2-normalised.
//
// The similarity it gives is lexical, not semantic: texts that share words and word pieces
// ("embedding", "embedded") come out close, but synonyms and paraphrases ("car", "automobile")
// do not. It is the offline default and a baseline; use a model behind OpenAI for meaning.
//
// The output depends only on the text and the dimension: the hash is FNV-1a written here, with
// no per-process seed, and the arithmetic is exact or correctly rounded (counts are multiples
// of 1/2, then sqrt, sum, divide), so vectors are bit-identical across runs, machines and
// architectures. (A Go release moving to a newer Unicode version may change which runes are
// letters or how they lower-case, which touches only texts with newly assigned characters.)
//
// A text with no word characters (empty, spaces, only punctuation or emoji) has no features; it
// gets the constant unit vector (every component 1/sqrt(dim)) rather than zeros, so that cosine
// never divides by zero in a store. All such texts are therefore identical to each other and
// about equally far from everything else.
type Hashing struct {
	dim         int
	fingerprint string
	emptyValue  float32
}

// hashingVersion names the feature set; bump it when tokenisation, hashing or weighting changes
// so documents embedded before are re-embedded (it is part of the fingerprint).
const hashingVersion = "hash-v1"

// Feature weights before damping: whole words carry the most evidence; the n-grams let
// inflections and compounds ("embedding", "embedder") overlap partially.
const (
	weightWord    = 1.0
	weightTrigram = 0.5
	weight4gram   = 0.5
)

// NewHashing builds a hashing embedder; zero config fields take their defaults.
func NewHashing(cfg HashingConfig) (*Hashing, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embed: hashing: %w", err)
	}
	return &Hashing{
		dim:         cfg.Dimension,
		fingerprint: fmt.Sprintf("%s/%d", hashingVersion, cfg.Dimension),
		emptyValue:  float32(1 / math.Sqrt(float64(cfg.Dimension))),
	}, nil
}

// Dimension implements Embedder.
func (h *Hashing) Dimension() int { return h.dim }

// Fingerprint implements Embedder: "hash-v1/<dimension>".
func (h *Hashing) Fingerprint() string { return h.fingerprint }

// Embed implements Embedder. It never returns a transient error; it fails only when ctx ends.
func (h *Hashing) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	if len(texts) == 0 {
		return out, nil
	}
	// One backing array for all vectors and one accumulator reused per text: two allocations
	// per call, none per token.
	backing := make([]float32, len(texts)*h.dim)
	acc := make([]float64, h.dim)
	for i, text := range texts {
		// Large batches of long texts take a while; let a cancelled caller go early.
		if i%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		vec := backing[i*h.dim : (i+1)*h.dim : (i+1)*h.dim]
		h.embedOne(text, acc, vec)
		out[i] = vec
	}
	return out, nil
}

// Hash constants: 64-bit FNV-1a, fed 32-bit runes instead of bytes (one step per rune), with
// a different starting value per feature kind so a word and an n-gram of the same runes differ.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211

	seedWord    = fnvOffset
	seedTrigram = fnvOffset ^ 0x9e3779b97f4a7c15
	seed4gram   = fnvOffset ^ 0xc2b2ae3d27d4eb4f

	// Boundary markers padding each word for n-grams; outside the Unicode range, so they can
	// never collide with a real rune.
	markStart = 0x110000
	markEnd   = 0x110001
)

func fnvStep(h uint64, r rune) uint64 { return (h ^ uint64(r)) * fnvPrime }

// mix is the murmur3 64-bit finaliser: FNV-1a over a handful of inputs leaves its high and low
// bits poorly mixed, and both are used (bucket from the low half, sign from the top bit).
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// add puts one feature into the accumulator: bucket from the low 32 bits (multiply-shift, no
// modulo bias worth the name), sign from the top bit.
func (h *Hashing) add(acc []float64, hash uint64, w float64) {
	hash = mix(hash)
	i := (uint64(uint32(hash)) * uint64(h.dim)) >> 32
	if hash>>63 != 0 {
		w = -w
	}
	acc[i] += w
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func toLower(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}
	return unicode.ToLower(r)
}

// embedOne writes the normalised vector of text into vec, using acc as scratch.
func (h *Hashing) embedOne(text string, acc []float64, vec []float32) {
	clear(acc)
	var (
		inWord   bool
		wordHash uint64
		// The last three runes of the padded word, p1 the most recent; n counts how many of
		// them are real (the start marker included).
		p1, p2, p3 rune
		n          int
		features   int
	)
	gram := func(r rune) {
		if n >= 2 {
			h.add(acc, fnvStep(fnvStep(fnvStep(seedTrigram, p2), p1), r), weightTrigram)
		}
		if n >= 3 {
			h.add(acc, fnvStep(fnvStep(fnvStep(fnvStep(seed4gram, p3), p2), p1), r), weight4gram)
		}
		p3, p2, p1 = p2, p1, r
		n++
	}
	endWord := func() {
		gram(markEnd)
		h.add(acc, wordHash, weightWord)
		features++
		inWord = false
	}
	for _, r := range text {
		if !isWordRune(r) {
			if inWord {
				endWord()
			}
			continue
		}
		r = toLower(r)
		if !inWord {
			inWord = true
			wordHash = seedWord
			p1, p2, p3, n = markStart, 0, 0, 1
		}
		wordHash = fnvStep(wordHash, r)
		gram(r)
	}
	if inWord {
		endWord()
	}

	if features == 0 {
		for i := range vec {
			vec[i] = h.emptyValue
		}
		return
	}
	var sum float64
	for i, c := range acc {
		// Sublinear weighting on the bucket, keeping the sign the hash gave. The square root
		// rather than a logarithm: it is correctly rounded on every platform, where math.Log1p
		// may differ in the last bit between architectures, and the vectors must be identical.
		v := math.Sqrt(math.Abs(c))
		if c < 0 {
			v = -v
		}
		acc[i] = v
		// The conversion forbids fusing into an FMA, which arm64 would otherwise do and
		// amd64 not, giving different sums.
		sum += float64(v * v)
	}
	if sum == 0 {
		// Every feature cancelled out against another of opposite sign in the same bucket;
		// rare, but the vector must still be usable for cosine.
		for i := range vec {
			vec[i] = h.emptyValue
		}
		return
	}
	inv := 1 / math.Sqrt(sum)
	for i, v := range acc {
		vec[i] = float32(v * inv)
	}
}
