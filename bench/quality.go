package main

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chunk quality, measured the same way for every splitter from its chunks' text alone (the
// project's offsets are only checked, not trusted).
//
// Definitions:
//   - tokens: cl100k_base tokens (the project's limit is in those); characters: Unicode code
//     points (langchaingo's default length; LangChain.js counts UTF-16 units, which differ only
//     for characters outside the Basic Multilingual Plane).
//   - verbatim: the chunk's text, trimmed of surrounding whitespace, occurs in its document at or
//     after the previous located chunk's start (searched within a window of twice its length plus
//     16 KiB; a chunk of fewer than three words does not move that start). Splitters that
//     re-render Markdown produce chunks that are not verbatim.
//   - boundary: the trimmed chunk ends a sentence (".", "!", "?", ":", "。", "！", "？", or ";"
//     and optional closing quotes, brackets or emphasis marks), or, when verbatim, what follows
//     it in the document is a blank line, a heading line or the document's end; or it is the
//     document's last chunk.
//   - words: maximal runs of Unicode letters and digits. A word of the input is covered when
//     all of its bytes lie inside some verbatim chunk, or when a non-verbatim chunk's words,
//     aligned in order, match it: the chunk's words and the input's words from where the
//     previous chunk was located (or from where a run of three of the chunk's first words next
//     occurs, within 20,000 words, if that matches more) over twice the chunk's word count plus
//     64 are aligned by a longest common subsequence. Text a splitter adds (a repeated heading)
//     then matches nothing, and text it drops is not covered. The next chunk is looked for from
//     the match of the last word at least 160 bytes before this one's end (overlaps repeat less). Coverage is covered
//     words / input words; 1.000 means no word of the input is missing from the chunks.

// quality accumulates the figures over documents.
type quality struct {
	Docs, Chunks          int
	OverTokens, OverChars int
	MaxTokens, MaxChars   int
	Tokens, Chars         int
	Boundary, Verbatim    int
	Words, Covered        int
}

func (q *quality) figures() map[string]float64 {
	f := map[string]float64{
		"chunks":      float64(q.Chunks),
		"over tokens": float64(q.OverTokens),
		"over chars":  float64(q.OverChars),
		"max tokens":  float64(q.MaxTokens),
		"max chars":   float64(q.MaxChars),
		"coverage":    1,
	}
	if q.Chunks > 0 {
		f["mean tokens"] = float64(q.Tokens) / float64(q.Chunks)
		f["mean chars"] = float64(q.Chars) / float64(q.Chunks)
		f["boundary"] = float64(q.Boundary) / float64(q.Chunks)
		f["verbatim"] = float64(q.Verbatim) / float64(q.Chunks)
	}
	if q.Words > 0 {
		f["coverage"] = float64(q.Covered) / float64(q.Words)
	}
	return f
}

// limits are what chunks are held to: the project's token limit and the peers' character limit.
type limits struct {
	Tokens, Chars int
	Count         func(string) int // cl100k_base tokens
	// Only says which documents (by index) the figures are taken on.
	Only func(i int) bool
}

// span is a chunk's trimmed text located in its document, or start -1 when not verbatim.
type span struct{ start, end int }

// addDoc measures one document's chunks. known, when not nil, holds where each chunk is (the
// project reports it); otherwise chunks are located by searching.
func (q *quality) addDoc(doc string, chunks []string, known []span, lim limits) {
	q.Docs++
	words := wordSpans(doc)
	q.Words += len(words)
	covered := make([]bool, len(words))
	var ids []int32 // the words as numbers, for non-verbatim chunks only
	var dict map[string]int32
	mark := make([]int32, len(doc)+1) // +1 at a verbatim chunk's start, -1 at its end
	from := 0
	for i, ch := range chunks {
		t := strings.TrimSpace(ch)
		q.Chunks++
		toks, chars := lim.Count(t), utf8.RuneCountInString(t)
		q.Tokens += toks
		q.Chars += chars
		q.MaxTokens, q.MaxChars = max(q.MaxTokens, toks), max(q.MaxChars, chars)
		if toks > lim.Tokens {
			q.OverTokens++
		}
		if chars > lim.Chars {
			q.OverChars++
		}
		at := span{-1, -1}
		if known != nil {
			at = known[i]
		} else if t != "" {
			window := doc[from:min(len(doc), from+2*len(t)+16<<10)]
			if k := strings.Index(window, t); k >= 0 {
				at = span{from + k, from + k + len(t)}
			}
		}
		if at.start >= 0 {
			q.Verbatim++
			mark[at.start]++
			mark[at.end]--
			if known != nil || len(wordSpans(t)) >= 3 {
				// A chunk of a word or two ("---") may be found far from where it came from.
				from = at.start + 1
			}
		} else {
			if dict == nil {
				dict = map[string]int32{}
				ids = make([]int32, len(words))
				for k, w := range words {
					id, ok := dict[doc[w.start:w.end]]
					if !ok {
						id = int32(len(dict))
						dict[doc[w.start:w.end]] = id
					}
					ids[k] = id
				}
			}
			if w := alignWords(doc, words, ids, dict, covered, t, from); w >= 0 {
				from = w
			}
		}
		if i == len(chunks)-1 || endsSentence(t) || at.start >= 0 && endsBlock(doc[at.end:]) {
			q.Boundary++
		}
	}
	// Prefix sums of the marks: depth[b] > 0 when byte b is inside a verbatim chunk.
	inside := make([]int32, len(doc)+1) // inside[b]: bytes before b that are covered
	depth := int32(0)
	for b := range len(doc) {
		depth += mark[b]
		inside[b+1] = inside[b]
		if depth > 0 {
			inside[b+1]++
		}
	}
	for k, w := range words {
		if covered[k] || int(inside[w.end]-inside[w.start]) == w.end-w.start {
			q.Covered++
		}
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordSpans returns the byte spans of s's words.
func wordSpans(s string) []span {
	var out []span
	start := -1
	for i, r := range s {
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			out = append(out, span{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(s)})
	}
	return out
}

// alignWords marks the document words that a non-verbatim chunk's words match (see the
// definitions above) and returns where the next chunk's search should start: the match of the
// last chunk word at least nextMargin bytes before the chunk's end (overlaps repeat less), else
// of the first. -1: no match.
func alignWords(doc string, words []span, ids []int32, dict map[string]int32, covered []bool, chunk string, from int) int {
	cw := wordSpans(chunk)
	if len(cw) == 0 {
		return -1
	}
	cids := make([]int32, len(cw))
	for j, w := range cw {
		cids[j] = -1 // a word the document does not have matches nothing
		if id, ok := dict[chunk[w.start:w.end]]; ok {
			cids[j] = id
		}
	}
	// pos: the first input word at or after from.
	pos, hi := 0, len(words)
	for pos < hi {
		mid := (pos + hi) / 2
		if words[mid].start < from {
			pos = mid + 1
		} else {
			hi = mid
		}
	}
	// Candidate places: right after the previous chunk, and where one of the chunk's first
	// runs of three words first occurs after it (a splitter that drops text, such as a code
	// block, can put the next chunk far on).
	starts := []int{pos}
	for j := 0; j < min(len(cids)-2, 16); j++ {
		if k := findRun(ids, cids[j:j+3], pos+1, pos+anchorWords); k >= 0 {
			starts = append(starts, max(pos, k-j))
			break
		}
	}
	var best [][2]int
	for _, s := range starts {
		if m := lcs(cids, ids[s:min(len(ids), s+2*len(cids)+slackWords)]); len(m) > len(best) {
			for i := range m {
				m[i][1] += s
			}
			best = m
		}
	}
	next := -1
	for _, m := range best {
		covered[m[1]] = true
		if next < 0 || cw[m[0]].end <= len(chunk)-nextMargin {
			next = words[m[1]].start
		}
	}
	return next
}

// findRun returns the first k in [lo, hi) where ids[k:] starts with run, or -1.
func findRun(ids, run []int32, lo, hi int) int {
	if run[0] < 0 {
		return -1
	}
	for k := lo; k+len(run) <= len(ids) && k < hi; k++ {
		match := true
		for i, id := range run {
			if ids[k+i] != id {
				match = false
				break
			}
		}
		if match {
			return k
		}
	}
	return -1
}

// lcs returns the pairs (index in a, index in b) of a longest common subsequence of a and b.
func lcs(a, b []int32) [][2]int {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	w := len(b) + 1
	t := make([]uint16, (len(a)+1)*w) // t[i*w+j]: LCS length of a[i:] and b[j:]
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			switch {
			case a[i] == b[j] && a[i] >= 0:
				t[i*w+j] = t[(i+1)*w+j+1] + 1
			case t[(i+1)*w+j] >= t[i*w+j+1]:
				t[i*w+j] = t[(i+1)*w+j]
			default:
				t[i*w+j] = t[i*w+j+1]
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j] && a[i] >= 0:
			out = append(out, [2]int{i, j})
			i++
			j++
		case t[(i+1)*w+j] >= t[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

// How far alignWords looks: for a run of three words to pick up the thread, and past twice
// the chunk's word count for its words.
const (
	anchorWords = 20000
	slackWords  = 64
	nextMargin  = 160
)

// endsSentence reports whether trimmed text ends a sentence.
func endsSentence(t string) bool {
	t = strings.TrimRight(t, "\"')]*_\u201d\u2019")
	for _, end := range []string{".", "!", "?", ":", ";", "\u3002", "\uff01", "\uff1f"} {
		if strings.HasSuffix(t, end) {
			return true
		}
	}
	return false
}

// endsBlock reports whether rest, what follows a chunk in its document, starts with the end of
// a paragraph: optional spaces, then the document's end, or a line break followed by a blank
// line or a heading.
func endsBlock(rest string) bool {
	rest = strings.TrimLeft(rest, " \t\r")
	if rest == "" {
		return true
	}
	if rest[0] != '\n' {
		return false
	}
	next := strings.TrimLeft(rest[1:], " \t\r")
	return next == "" || next[0] == '\n' || next[0] == '#'
}
