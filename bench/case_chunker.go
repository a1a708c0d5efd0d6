package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
	"github.com/tmc/langchaingo/textsplitter"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

// The chunker case: internal/chunk against the text splitters of langchaingo (in process) and
// LangChain.js (node), on the same Markdown.
//
// The peers run as their users configure them, 1000 characters with 100 of overlap. The project
// sizes chunks in cl100k_base tokens; it runs with the limit nearest those characters on this
// corpus, 240 tokens (its chunks average about 4.2 characters a token), and 24 of overlap.
const (
	peerChunkChars   = 1000
	peerOverlapChars = 100
	projectMaxTokens = 240
	projectOverlap   = 24
)

func init() {
	f1 := func(name, unit string) Metric { return Metric{Name: name, Unit: unit, Format: "%.1f"} }
	register(&Case{
		Name:    "chunker",
		About:   "Markdown chunking throughput and chunk quality, project vs langchaingo and LangChain.js splitters",
		Primary: f1("MB/s", "wall"),
		Columns: []Metric{
			f1("MB/s", "wall"), f1("MB/cpu-s", ""), f1("allocs/MB", ""), Metric{Name: "alloc MB/MB", Format: "%.2f"},
			{Name: "chunks", Format: "%.0f"}, f1("mean tokens", ""), {Name: "mean chars", Format: "%.0f"}, {Name: "max tokens", Format: "%.0f"},
			{Name: "over tokens", Unit: fmt.Sprintf(">%d", projectMaxTokens), Format: "%.0f"},
			{Name: "over chars", Unit: fmt.Sprintf(">%d", peerChunkChars), Format: "%.0f"},
			{Name: "boundary", Format: "%.3f"}, {Name: "coverage", Format: "%.3f"}, {Name: "verbatim", Format: "%.3f"},
		},
		Prepare: prepareChunker,
	})
}

func prepareChunker(ctx context.Context, env *Env) (*Prepared, error) {
	corpus, err := loadCorpus(ctx, env)
	if err != nil {
		return nil, err
	}
	lib, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		return nil, err
	}
	lim := limits{Tokens: projectMaxTokens, Chars: peerChunkChars, Count: func(s string) int {
		n, _ := lib.Count(s)
		return n
	}}
	cfg := chunk.Config{MaxTokens: projectMaxTokens, OverlapTokens: projectOverlap}
	warm, err := chunk.New(cfg)
	if err != nil {
		return nil, err
	}
	docs := make([]string, len(corpus.Docs))
	for i, d := range corpus.Docs {
		docs[i] = d.Markdown
	}
	// The quality figures are taken on the manual's pages: word alignment, which measures
	// splitters that re-render Markdown, needs real text (the generated pages' small vocabulary
	// repeats runs of words and makes it ambiguous). The project's own checks cover every
	// document. Without the manual, the figures are taken on the generated pages.
	lim.Only = func(i int) bool { return corpus.Pages == 0 || !strings.HasPrefix(corpus.Docs[i].Name, "gen-") }

	// langchaingo logs a line for every chunk it makes over the size; keep stderr readable
	// (and do not bill the peer for the writes).
	log.SetOutput(io.Discard)
	subjects := []*Subject{
		projectSubject("project (cold)", docs, lim, func() (*chunk.Chunker, error) { return chunk.New(cfg) }),
		projectSubject("project (warm)", docs, lim, func() (*chunk.Chunker, error) { return warm, nil }),
		goPeerSubject("langchaingo RecursiveCharacter", docs, lim, textsplitter.NewRecursiveCharacter(
			textsplitter.WithChunkSize(peerChunkChars), textsplitter.WithChunkOverlap(peerOverlapChars))),
		// Code blocks on: by default this splitter drops them, which loses another 8% of the
		// manual's words.
		goPeerSubject("langchaingo Markdown", docs, lim, textsplitter.NewMarkdownTextSplitter(
			textsplitter.WithChunkSize(peerChunkChars), textsplitter.WithChunkOverlap(peerOverlapChars),
			textsplitter.WithCodeBlocks(true))),
	}
	if err := ensureNodeModules(env.Options.JSDir, env.Logf); err != nil {
		return nil, err
	}
	mdDir := filepath.Join(env.Dir, "markdown")
	if err := os.Mkdir(mdDir, 0o755); err != nil {
		return nil, err
	}
	if err := writeCorpus(mdDir, corpus.Docs); err != nil {
		return nil, err
	}
	node, err := startNode(ctx, env.Options.JSDir, mdDir, peerChunkChars, peerOverlapChars)
	if err != nil {
		return nil, err
	}
	if node.Docs != len(docs) || node.Bytes != corpus.Bytes {
		node.Close()
		return nil, correctness("node read %d documents, %d bytes; the corpus has %d, %d", node.Docs, node.Bytes, len(docs), corpus.Bytes)
	}
	subjects = append(subjects,
		nodeSubject("LangChain.js RecursiveCharacter", "recursive", node, docs, corpus.Bytes, lim, env.Dir),
		nodeSubject("LangChain.js Markdown", "markdown", node, docs, corpus.Bytes, lim, env.Dir))

	var compare [][2]string
	for _, ours := range []string{"project (cold)", "project (warm)"} {
		for _, peer := range subjects[2:] {
			compare = append(compare, [2]string{ours, peer.Name})
		}
	}
	return &Prepared{
		Input:    corpus.String(),
		Subjects: subjects,
		Compare:  compare,
		Notes: []string{
			fmt.Sprintf("project: internal/chunk, Markdown-aware, MaxTokens %d cl100k_base tokens, overlap %d; peers: chunk size %d characters, overlap %d, their defaults otherwise (langchaingo Markdown with code blocks kept)",
				projectMaxTokens, projectOverlap, peerChunkChars, peerOverlapChars),
			"cold: a new Chunker (empty piece cache) for each run over the corpus; warm: one Chunker for all runs, as a long-running worker has",
			fmt.Sprintf("over tokens: chunks over %d cl100k_base tokens, the project's limit (counted with github.com/tiktoken-go/tokenizer for every splitter); over chars: chunks over %d code points, the peers' limit",
				projectMaxTokens, peerChunkChars),
			"chunks .. verbatim are taken on the manual's pages (the project's correctness checks on every document); boundary: share of chunks ending a sentence or a paragraph; coverage: share of the input's words found, in order, in the chunks; verbatim: share of chunks that are the input's own text (bench/quality.go defines each)",
			"MB/s: input Markdown per second of wall time of the splitting alone (node times itself, excluding start-up and file reading); MB/cpu-s: per second of the process's CPU time; allocs: Go sides only",
		},
		Close: node.Close,
	}, nil
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscallRusage
	return ru.self()
}

// timeGo runs split over every document and measures it.
func timeGo[T any](docs []string, split func(string) (T, error)) ([]T, Sample, error) {
	var m0, m1 runtime.MemStats
	out := make([]T, len(docs))
	bytes := 0
	for _, d := range docs {
		bytes += len(d)
	}
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	t0 := time.Now()
	for i, d := range docs {
		var err error
		if out[i], err = split(d); err != nil {
			return nil, nil, err
		}
	}
	wall := time.Since(t0)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	mb := float64(bytes) / 1e6
	s := Sample{
		"MB/s":        mb / wall.Seconds(),
		"allocs/MB":   float64(m1.Mallocs-m0.Mallocs) / mb,
		"alloc MB/MB": float64(m1.TotalAlloc-m0.TotalAlloc) / 1e6 / mb,
		"wall ms":     float64(wall.Microseconds()) / 1e3,
	}
	if cpu > 0 {
		s["MB/cpu-s"] = mb / cpu.Seconds()
	}
	return out, s, nil
}

// fingerprint identifies a run's output so that every measured run can be held to the checked one.
type fingerprint struct {
	chunks int
	hash   uint64
}

func projectSubject(name string, docs []string, lim limits, chunker func() (*chunk.Chunker, error)) *Subject {
	sub := &Subject{Name: name, Project: true}
	var want fingerprint
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		c, err := chunker()
		if err != nil {
			return nil, err
		}
		out, s, err := timeGo(docs, func(d string) ([]chunk.Chunk, error) { return c.Split(d), nil })
		if err != nil {
			return nil, err
		}
		h := fnv.New64a()
		fp := fingerprint{}
		for _, chunks := range out {
			fp.chunks += len(chunks)
			for _, ch := range chunks {
				fmt.Fprintf(h, "%d,%d,%d;", ch.Start, ch.End, ch.Tokens)
			}
		}
		fp.hash = h.Sum64()
		if !warmup {
			if fp != want {
				return nil, correctness("%s: a measured run made %d chunks (hash %x), the checked run %d (%x)", name, fp.chunks, fp.hash, want.chunks, want.hash)
			}
			return s, nil
		}
		want = fp
		var q quality
		for i, chunks := range out {
			if err := checkProjectChunks(docs[i], chunks, lim); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
			}
			texts := make([]string, len(chunks))
			spans := make([]span, len(chunks))
			for k, ch := range chunks {
				texts[k], spans[k] = ch.Text, span{ch.Start, ch.End}
			}
			if lim.Only(i) {
				q.addDoc(docs[i], texts, spans, lim)
			}
		}
		sub.Quality = q.figures()
		if q.OverTokens > 0 || q.Covered != q.Words {
			return nil, correctness("%s: %d chunks over %d tokens, coverage %d/%d words", name, q.OverTokens, lim.Tokens, q.Covered, q.Words)
		}
		return s, nil
	}
	return sub
}

// checkProjectChunks holds one document's chunks to the chunker's contract: each is the
// document's own trimmed text at its offsets, numbered in order, starts strictly increasing,
// its token count right (by the tokenizer library, not the chunker's own counter) and within the
// limit, and every non-whitespace byte of the document in some chunk.
func checkProjectChunks(doc string, chunks []chunk.Chunk, lim limits) error {
	covered := 0 // the document is covered up to here
	prevStart := -1
	for k, ch := range chunks {
		switch {
		case ch.Index != k:
			return correctness("chunk %d has index %d", k, ch.Index)
		case ch.Start <= prevStart || ch.End > len(doc) || ch.Start >= ch.End:
			return correctness("chunk %d spans [%d,%d) after a start at %d", k, ch.Start, ch.End, prevStart)
		case ch.Text != doc[ch.Start:ch.End]:
			return correctness("chunk %d's text is not the document's [%d,%d)", k, ch.Start, ch.End)
		case ch.Text != strings.TrimSpace(ch.Text):
			return correctness("chunk %d is not trimmed", k)
		}
		if n := lim.Count(ch.Text); n != ch.Tokens || n > lim.Tokens {
			return correctness("chunk %d has %d tokens (it says %d; limit %d)", k, n, ch.Tokens, lim.Tokens)
		}
		if gap := doc[covered:max(covered, ch.Start)]; strings.TrimFunc(gap, unicode.IsSpace) != "" {
			return correctness("text before chunk %d is in no chunk: %.60q", k, strings.TrimFunc(gap, unicode.IsSpace))
		}
		covered = max(covered, ch.End)
		prevStart = ch.Start
	}
	if rest := strings.TrimFunc(doc[covered:], unicode.IsSpace); rest != "" {
		return correctness("the document's end is in no chunk: %.60q", rest)
	}
	return nil
}

func textsFingerprint(out [][]string) fingerprint {
	h := fnv.New64a()
	fp := fingerprint{}
	for _, chunks := range out {
		fp.chunks += len(chunks)
		for _, c := range chunks {
			h.Write([]byte(c))
			h.Write([]byte{0})
		}
	}
	fp.hash = h.Sum64()
	return fp
}

func peerQuality(docs []string, out [][]string, lim limits) map[string]float64 {
	var q quality
	for i, chunks := range out {
		if lim.Only(i) {
			q.addDoc(docs[i], chunks, nil, lim)
		}
	}
	return q.figures()
}

func goPeerSubject(name string, docs []string, lim limits, sp textsplitter.TextSplitter) *Subject {
	sub := &Subject{Name: name}
	var want fingerprint
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		out, s, err := timeGo(docs, sp.SplitText)
		if err != nil {
			return nil, err
		}
		fp := textsFingerprint(out)
		if warmup {
			want = fp
			sub.Quality = peerQuality(docs, out, lim)
		} else if fp != want {
			return nil, correctness("%s: a measured run made %d chunks (hash %x), the checked run %d (%x)", name, fp.chunks, fp.hash, want.chunks, want.hash)
		}
		return s, nil
	}
	return sub
}

func nodeSubject(name, splitter string, node *nodePeer, docs []string, bytes int, lim limits, dir string) *Subject {
	sub := &Subject{Name: name}
	var want nodeReply
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		file := ""
		if warmup {
			file = filepath.Join(dir, splitter+"-chunks.json")
		}
		r, err := node.split(splitter, file)
		if err != nil {
			return nil, err
		}
		if r.Docs != len(docs) || r.Bytes != bytes {
			return nil, correctness("%s split %d documents, %d bytes; the corpus has %d, %d", name, r.Docs, r.Bytes, len(docs), bytes)
		}
		if warmup {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			var out [][]string
			if err := json.Unmarshal(b, &out); err != nil {
				return nil, fmt.Errorf("%s: chunks: %w", name, err)
			}
			if len(out) != len(docs) {
				return nil, correctness("%s returned chunks for %d documents of %d", name, len(out), len(docs))
			}
			chunks, chars := 0, 0
			for _, d := range out {
				chunks += len(d)
				for _, c := range d {
					chars += utf16Len(c)
				}
			}
			if chunks != r.Chunks || chars != r.Chars {
				return nil, correctness("%s reported %d chunks of %d UTF-16 units but wrote %d of %d", name, r.Chunks, r.Chars, chunks, chars)
			}
			want = r
			sub.Quality = peerQuality(docs, out, lim)
		} else if r.Chunks != want.Chunks || r.Chars != want.Chars {
			return nil, correctness("%s: a measured run made %d chunks (%d units), the checked run %d (%d)", name, r.Chunks, r.Chars, want.Chunks, want.Chars)
		}
		mb := float64(bytes) / 1e6
		s := Sample{"MB/s": mb / (r.MS / 1e3), "wall ms": r.MS}
		if r.CPUMS > 0 {
			s["MB/cpu-s"] = mb / (r.CPUMS / 1e3)
		}
		return s, nil
	}
	return sub
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r == utf8.RuneError {
			n++ // JSON decoding made U+FFFD of what node wrote as a lone surrogate
			continue
		}
		n += utf16.RuneLen(r)
	}
	return n
}
