// Package chunk splits Markdown (and plain text) into chunks sized in tokens, for embedding.
// It knows nothing about documents' storage, embedders or vector stores.
//
// # How a document is cut
//
// A document is cut recursively, keeping each part whole when it fits in Config.MaxTokens:
// first into sections at its headings (outermost level first; ATX "#" headings and setext
// "===" / "---" underlines, never lines inside code fences), then into blocks (paragraphs,
// lists, fenced code, tables, separated by blank lines), then sentences, lines, words, and as
// a last resort a single huge word at token-piece and then rune boundaries. A fenced code block
// (``` or ~~~) or a table (consecutive lines starting with '|') is cut only when it alone
// exceeds the limit, and then line by line first. The resulting parts are packed greedily, in
// order, into chunks of at most MaxTokens, so small neighbouring sections share a chunk; a
// heading is never left alone at the end of a chunk when it can start the next.
//
// Each chunk is the document's own text, input[Start:End], without surrounding whitespace. Its
// HeadingPath is the headings whose sections hold its start, outermost first ("Install >
// Linux"; a skipped level is simply absent); a chunk that starts with a heading has that
// heading last. A chunk that runs on into later sections still carries the path of its start.
// Consecutive chunks repeat about Config.OverlapTokens tokens: the next chunk starts that much
// earlier, at a sentence start if that keeps at least half of the overlap, else at a word start
// (at a line start inside code and tables). There is no overlap before a chunk that starts a
// section, none reaching back across a heading or out of a code block or table into prose, and
// none that would take the chunk over the limit. Chunks' starts strictly increase, every
// non-whitespace byte of the input is in some chunk, and no cut falls inside a UTF-8 character
// (an invalid byte counts as a one-byte character). The output depends only on the input and
// the Config; Fingerprint names both the rules and the Config.
//
// # Tokens
//
// Tokens are counted with OpenAI's cl100k_base encoding, the one the text-embedding-3 and
// text-embedding-ada-002 models use, so a limit set here is a limit those embedders see. The
// vocabulary is compiled into the binary by github.com/tiktoken-go/tokenizer; nothing is
// downloaded at run time. o200k_base (GPT-4o and later chat models) is not used: no OpenAI
// embedding model uses it, and it would double the vocabulary in memory. Counts equal that
// library's Count exactly (tests and a fuzz target hold them to it). The library differs from
// OpenAI's tiktoken in two rare cases: it drops U+007F (DEL), and a run of spaces and line
// breaks splits after the first group of line breaks, which can cost an extra token there.
// Local embedding models use other tokenizers; cl100k counts are a fair proxy for them, but
// leave them some headroom.
//
// Counting is fast because no text is tokenized twice: the document is cut once into the
// pieces the tokenizer's split pattern would make (by a hand-written equivalent of the
// pattern), each piece's count comes from a per-worker cache or, on a miss, a byte-pair merge
// over the vocabulary, and the count of any range is a difference of prefix sums, corrected
// only at its two ends. Loading the vocabulary takes about 40 ms and 10 MB, once per process,
// in the first New; each goroutine splitting at the same time holds a cache of up to 6 MB
// and, while it splits, about twice the document's size in piece offsets and counts. A Chunker
// keeps up to GOMAXPROCS of those caches (and up to 8 MB of offsets each) between Splits for
// as long as it lives, so that they stay warm.
package chunk

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// Chunk is one piece of a document.
type Chunk struct {
	// Index is the chunk's position in the document, from 0.
	Index int
	// Text is the chunk's text: Source[Start:End] of the input, trimmed of surrounding whitespace
	// (Start and End point at the trimmed text).
	Text string
	// HeadingPath is the Markdown headings above the chunk, outermost first, e.g. ["Install", "Linux"].
	// Chunks of one section share the slice: do not modify it.
	HeadingPath []string
	// Start and End are byte offsets of Text in the input.
	Start, End int
	// Tokens is Text's length in tokens.
	Tokens int
}

// algorithmVersion names the cutting rules in Fingerprint. Bump it whenever a change can move
// a chunk boundary, so that stored chunks are known to be stale.
const algorithmVersion = "md1"

// NoOverlap, as Config.OverlapTokens, turns overlap off (zero means the default).
const NoOverlap = -1

// Config sets a Chunker's sizes; the zero value means the defaults.
type Config struct {
	// MaxTokens is the most cl100k_base tokens a chunk may hold. Defaults to 512; 16..8192.
	MaxTokens int
	// OverlapTokens is about how many tokens of the previous chunk's end a chunk repeats at its
	// start. Defaults to 64, or MaxTokens/4 when that is smaller; NoOverlap for none;
	// 0..MaxTokens/2.
	OverlapTokens int
}

// Limits of Config.MaxTokens.
const (
	MinMaxTokens = 16
	MaxMaxTokens = 8192
)

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxTokens == 0 {
		c.MaxTokens = 512
	}
	switch c.OverlapTokens {
	case 0:
		c.OverlapTokens = min(64, c.MaxTokens/4)
	case NoOverlap:
		c.OverlapTokens = 0
	}
	return c
}

// Validate reports a field outside its range, by name.
func (c Config) Validate() error {
	if c.MaxTokens < MinMaxTokens || c.MaxTokens > MaxMaxTokens {
		return errs.InvalidArgument("max_tokens", "must be between %d and %d, got %d",
			MinMaxTokens, MaxMaxTokens, c.MaxTokens)
	}
	if c.OverlapTokens < 0 || c.OverlapTokens > c.MaxTokens/2 {
		return errs.InvalidArgument("overlap_tokens", "must be between 0 and max_tokens/2 (%d), got %d",
			c.MaxTokens/2, c.OverlapTokens)
	}
	return nil
}

// maxSegment is the longest text Split indexes at once; offsets in the index are int32.
const maxSegment = 1 << 30

// Chunker splits documents. It is safe for concurrent use.
type Chunker struct {
	cfg        Config
	maxSegment int
	// idle holds the split states not in use, their piece caches warm, at most maxIdle of
	// them. Not a sync.Pool: a pool drops its contents after two garbage collections, and a
	// worker that embeds and stores between documents collects often, so its next Split
	// started cold (measured in docs/performance.md).
	mu      sync.Mutex
	idle    []*splitState
	maxIdle int
}

// New returns a Chunker for cfg (zero fields take their defaults).
func New(cfg Config) (*Chunker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chunk: %w", err)
	}
	loadVocabulary() // now rather than in the first Split
	return &Chunker{cfg: cfg, maxSegment: maxSegment, maxIdle: max(2, runtime.GOMAXPROCS(0))}, nil
}

// get takes an idle split state, or makes one.
func (c *Chunker) get() *splitState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.idle); n > 0 {
		st := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		return st
	}
	return new(splitState)
}

// put keeps a state for the next Split, unless maxIdle are already kept (more goroutines than
// that split at the same time only now and then; their extra states go to the collector).
func (c *Chunker) put(st *splitState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) < c.maxIdle {
		c.idle = append(c.idle, st)
	}
}

// Config returns the Chunker's settings, defaults applied.
func (c *Chunker) Config() Config { return c.cfg }

// Fingerprint identifies the cutting rules, the tokenizer and the settings, e.g.
// "md1/cl100k/512/64": chunks made under another fingerprint may be cut differently.
func (c *Chunker) Fingerprint() string {
	return fmt.Sprintf("%s/%s/%d/%d", algorithmVersion, tokenizerName, c.cfg.MaxTokens, c.cfg.OverlapTokens)
}

// CountTokens returns the number of cl100k_base tokens in s.
func (c *Chunker) CountTokens(s string) int {
	st := c.get()
	defer c.put(st)
	return st.cache.countString(s)
}

// Split cuts text (Markdown or plain text) into chunks. Empty or whitespace-only text has none.
func (c *Chunker) Split(text string) []Chunk {
	if len(text) > c.maxSegment {
		return c.splitLong(text)
	}
	st := c.get()
	defer func() {
		st.release()
		c.put(st)
	}()
	st.blocks, st.heads = scanBlocks(text, st.blocks[:0], st.heads[:0])
	if len(st.blocks) == 0 {
		return nil
	}
	st.idx.build(text, &st.cache)
	s := splitter{
		text:    text,
		max:     c.cfg.MaxTokens,
		overlap: c.cfg.OverlapTokens,
		idx:     &st.idx,
		cache:   &st.cache,
		blocks:  st.blocks,
		heads:   st.heads,
	}
	// Typical prose runs near four bytes a token; guessing the count saves regrowing.
	s.out = make([]Chunk, 0, len(text)/(4*max(1, c.cfg.MaxTokens-c.cfg.OverlapTokens))+1)
	s.run()
	if len(s.out) == 0 {
		return nil
	}
	return s.out
}

// splitLong splits a text too long to index at once into segments cut at line breaks, and
// splits each on its own: headings do not carry from one segment to the next, which at over
// a gigabyte of text is a fair price.
func (c *Chunker) splitLong(text string) []Chunk {
	var out []Chunk
	for base := 0; base < len(text); {
		end := len(text)
		if end-base > c.maxSegment {
			end = base + c.maxSegment
			if nl := strings.LastIndexByte(text[base:end], '\n'); nl > 0 {
				end = base + nl + 1
			} else {
				for end > base+1 && !isRuneStart(text, end) {
					end-- // not inside a character
				}
			}
		}
		for _, ch := range c.Split(text[base:end]) {
			ch.Index = len(out)
			ch.Start += base
			ch.End += base
			out = append(out, ch)
		}
		base = end
	}
	return out
}
