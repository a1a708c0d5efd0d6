package chunk

import (
	"strings"
	"unicode/utf8"
)

// splitState is the reusable memory of one Split call; a Chunker keeps them so that the piece
// cache stays warm and the index slices are not reallocated per document.
type splitState struct {
	cache  pieceCache
	idx    tokenIndex
	blocks []block
	heads  []heading
}

// release drops references to the document and very large buffers before the state is kept.
func (st *splitState) release() {
	st.idx.text = ""
	// Pieces kept for the next document: 4 MiB per slice, a document of about 4 MB. Idle
	// states live as long as their Chunker, so larger buffers are the collector's.
	const keep = 1 << 20
	if cap(st.idx.starts) > keep {
		st.idx.starts, st.idx.cum, st.idx.buckets = nil, nil, nil
	}
	clear(st.heads) // their paths are the caller's now
	st.heads = st.heads[:0]
	st.blocks = st.blocks[:0]
}

// Unit flags.
const (
	unitSection     uint8 = 1 << iota // the unit starts with a heading: no overlap before it
	unitHeadingOnly                   // the unit is a heading and nothing else
)

// splitter cuts one document. Units (whole sections, blocks, sentences, ... whatever is the
// largest piece that fits) come out in order and are packed greedily into chunks.
type splitter struct {
	text     string
	max      int
	overlap  int
	idx      *tokenIndex
	cache    *pieceCache
	blocks   []block
	heads    []heading
	out      []Chunk
	curStart int // the open chunk's trimmed start, or -1
	curEnd   int
	curToks  int
	// The open chunk's last unit, and where the chunk ended before it (-1 if it is the first)
	// with its count then.
	lastStart       int
	lastHeadingOnly bool
	beforeLast      int
	beforeToks      int
	prevStart       int // Start of the last chunk emitted, or -1
}

func (s *splitter) run() {
	s.curStart, s.prevStart = -1, -1
	if len(s.blocks) > 0 {
		s.splitBlocks(0, len(s.blocks))
	}
	if s.curStart >= 0 {
		s.flush(s.curStart, s.curEnd, s.curToks)
	}
}

// trim narrows [a, b) to its non-whitespace content.
func (s *splitter) trim(a, b int) (int, int) {
	t := s.text
	for a < b {
		c := t[a]
		if c < utf8.RuneSelf {
			if asciiClass[c]&clSpace == 0 {
				break
			}
			a++
			continue
		}
		r, n := utf8.DecodeRuneInString(t[a:b])
		if !isSpaceRune(r) {
			break
		}
		a += n
	}
	for b > a {
		c := t[b-1]
		if c < utf8.RuneSelf {
			if asciiClass[c]&clSpace == 0 {
				break
			}
			b--
			continue
		}
		r, n := utf8.DecodeLastRuneInString(t[a:b])
		if !isSpaceRune(r) {
			break
		}
		b -= n
	}
	return a, b
}

func (s *splitter) fits(a, b int) bool {
	a, b = s.trim(a, b)
	// Each byte is at most three tokens (an invalid byte reads as U+FFFD), so a short range
	// needs no count.
	return b-a <= s.max/3 || s.idx.count(a, b) <= s.max
}

// splitBlocks emits blocks[bi:bj]: whole if it fits, else split at its outermost headings,
// else block by block.
func (s *splitter) splitBlocks(bi, bj int) {
	first := s.blocks[bi]
	a, b := first.start, s.blocks[bj-1].end
	if s.fits(a, b) {
		var flags uint8
		if first.kind == blockHeading {
			flags = unitSection
			if bj-bi == 1 {
				flags |= unitHeadingOnly
			}
		}
		s.unit(a, b, flags)
		return
	}
	if bj-bi == 1 {
		s.splitBlock(first)
		return
	}
	top := 7
	for k := bi + 1; k < bj; k++ {
		if blk := s.blocks[k]; blk.kind == blockHeading && blk.level < top {
			top = blk.level
		}
	}
	if top == 7 {
		for k := bi; k < bj; k++ {
			s.splitBlocks(k, k+1)
		}
		return
	}
	p := bi
	for k := bi + 1; k < bj; k++ {
		if blk := s.blocks[k]; blk.kind == blockHeading && blk.level == top {
			s.splitBlocks(p, k)
			p = k
		}
	}
	s.splitBlocks(p, bj)
}

// Levels of splitting below a block, coarsest first.
type level uint8

const (
	levelLine level = iota
	levelSentence
	levelWord
	levelPiece
	levelRune
)

var (
	proseLevels = []level{levelSentence, levelLine, levelWord, levelPiece, levelRune}
	codeLevels  = []level{levelLine, levelSentence, levelWord, levelPiece, levelRune}
)

// splitBlock emits one block that is too big to be a single unit.
func (s *splitter) splitBlock(blk block) {
	levels := proseLevels
	if blk.kind == blockCode || blk.kind == blockTable {
		levels = codeLevels
	}
	var flags uint8
	if blk.kind == blockHeading {
		flags = unitSection
	}
	s.splitText(blk.start, blk.end, levels, flags)
}

// splitText emits [a, b), which does not fit, cut at levels[0]'s boundaries; a part that still
// does not fit goes down a level.
func (s *splitter) splitText(a, b int, levels []level, flags uint8) {
	lv := levels[0]
	if lv == levelRune {
		s.splitRunes(a, b, flags)
		return
	}
	for p := a; p < b; {
		q := s.boundary(lv, p, b)
		if s.fits(p, q) {
			s.unit(p, q, flags)
		} else {
			s.splitText(p, q, levels[1:], flags)
		}
		flags = 0
		p = q
	}
}

// boundary returns the end of the level-lv part that starts at p (always past p).
func (s *splitter) boundary(lv level, p, b int) int {
	t := s.text
	switch lv {
	case levelLine:
		if i := strings.IndexByte(t[p:b], '\n'); i >= 0 {
			return p + i + 1
		}
		return b
	case levelSentence:
		return s.sentenceEnd(p, b)
	case levelWord:
		i := s.skipSpace(p, b)
		for i < b {
			r, n := runeAt(t, i)
			if isSpaceRune(r) {
				break
			}
			i += n
		}
		return s.skipSpace(i, b)
	default: // levelPiece
		k := s.idx.pieceAtOrAfter(p + 1)
		return min(int(s.idx.starts[k]), b)
	}
}

func (s *splitter) skipSpace(i, b int) int {
	for i < b {
		r, n := runeAt(s.text, i)
		if !isSpaceRune(r) {
			break
		}
		i += n
	}
	return i
}

// sentenceEnd returns where the sentence that starts at p ends, its trailing spaces included:
// after ". ", "! ", "? " (closing quotes and brackets allowed between), after "。", "！", "？",
// or before a line that starts a list item or a quote.
func (s *splitter) sentenceEnd(p, b int) int {
	t := s.text[:b]
	for i := p; i < b; i++ {
		switch t[i] {
		case '.', '!', '?':
			j := i + 1
			for j < b {
				if c := t[j]; c == '"' || c == '\'' || c == ')' || c == ']' || c == '*' || c == '_' {
					j++
				} else if strings.HasPrefix(t[j:], "\u201d") || strings.HasPrefix(t[j:], "\u2019") {
					j += 3
				} else {
					break
				}
			}
			if j < b && (t[j] == ' ' || t[j] == '\n' || t[j] == '\t' || t[j] == '\r') {
				return s.skipSpace(j, b)
			}
		case '\n':
			if i+1 < b && i+1 > p && startsListOrQuote(t[i+1:]) {
				return i + 1
			}
		case 0xE3: // 。
			if strings.HasPrefix(t[i:], "\u3002") {
				return s.skipSpace(i+3, b)
			}
		case 0xEF: // ！ ？
			if strings.HasPrefix(t[i:], "\uff01") || strings.HasPrefix(t[i:], "\uff1f") {
				return s.skipSpace(i+3, b)
			}
		}
	}
	return b
}

// splitRunes cuts [a, b), a single piece too big for a chunk, at rune boundaries: each part is
// the longest prefix that fits. Counts here are exact recounts, not index lookups, since the
// parts end inside a piece.
func (s *splitter) splitRunes(a, b int, flags uint8) {
	t := s.text
	fitsTo := func(a, e int) bool {
		ta, tb := s.trim(a, e)
		return s.cache.countString(t[ta:tb]) <= s.max
	}
	for {
		if a, b = s.trim(a, b); a >= b {
			return
		}
		_, n := runeAt(t, a)
		lo, hi := a+n, b // [a, lo) fits (one rune is at most four tokens)
		// Gallop from a guess of one token per byte, then bisect: the remainder is tried
		// whole only once the prefixes reach it, so a long piece is not recounted whole at
		// every cut.
		for g := a + s.max; ; g = a + 2*(g-a) {
			if g = s.runeStart(min(g, b), b); !fitsTo(a, g) {
				hi = g
				break
			}
			lo = g
			if g == b {
				s.unit(a, b, flags)
				return
			}
		}
		for {
			mid := s.runeStart(lo+(hi-lo)/2, hi)
			if mid <= lo || mid >= hi {
				break
			}
			if fitsTo(a, mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		s.unit(a, lo, flags)
		flags = 0
		a = lo
	}
}

// runeStart moves i forward to the next rune boundary (at most hi).
func (s *splitter) runeStart(i, hi int) int {
	for i < hi && !isRuneStart(s.text, i) {
		i++
	}
	return i
}

// isRuneStart reports whether decoding t from its start, as Go does (an invalid byte is a
// one-byte rune), puts a rune boundary at p. A byte that is not a continuation byte always
// starts a rune; a continuation byte does unless it completes a valid sequence whose lead byte,
// at most three bytes back, is itself a boundary.
func isRuneStart(t string, p int) bool {
	if p <= 0 || p >= len(t) || utf8.RuneStart(t[p]) {
		return true
	}
	for q := p - 1; q >= 0 && q >= p-3; q-- {
		if utf8.RuneStart(t[q]) {
			_, n := utf8.DecodeRuneInString(t[q:])
			return q+n <= p
		}
	}
	return true
}

// unit adds [a, b) to the open chunk if the result fits, else closes the chunk and opens the
// next with it.
func (s *splitter) unit(a, b int, flags uint8) {
	a, b = s.trim(a, b)
	if a >= b {
		return
	}
	headingOnly := flags&unitHeadingOnly != 0
	if s.curStart >= 0 {
		if n := s.idx.count(s.curStart, b); n <= s.max {
			s.beforeLast, s.beforeToks, s.curEnd, s.curToks = s.curEnd, s.curToks, b, n
			s.lastStart, s.lastHeadingOnly = a, headingOnly
			return
		}
		// A heading left last in a full chunk belongs with what follows it.
		if s.lastHeadingOnly && s.beforeLast >= 0 {
			if n := s.idx.count(s.lastStart, b); n <= s.max {
				headEnd, headToks := s.curEnd, s.idx.count(s.lastStart, s.curEnd)
				s.flush(s.curStart, s.beforeLast, s.beforeToks)
				s.curStart, s.curEnd, s.curToks = s.lastStart, b, n
				s.beforeLast, s.beforeToks, s.lastStart, s.lastHeadingOnly = headEnd, headToks, a, headingOnly
				return
			}
		}
		s.flush(s.curStart, s.curEnd, s.curToks)
	}
	start, n := a, -1
	if s.overlap > 0 && s.prevStart >= 0 && flags&unitSection == 0 {
		if o := s.overlapStart(a); o < a {
			if m := s.idx.count(o, b); m <= s.max {
				start, n = o, m
			}
		}
	}
	if n < 0 {
		n = s.idx.count(a, b)
	}
	s.curStart, s.curEnd, s.curToks = start, b, n
	s.lastStart, s.lastHeadingOnly, s.beforeLast = a, headingOnly, -1
}

// overlapStart returns where a chunk whose own text starts at a should start so as to repeat
// about s.overlap tokens before a: at a sentence start if that keeps at least half of them,
// else at a word start. It stays after the previous chunk's start (so starts increase), after
// the heading of a's section (so the heading path holds), and in prose.
func (s *splitter) overlapStart(a int) int {
	lb := s.prevStart + 1
	if h := s.headingAt(a); h != nil && h.body > lb {
		lb = h.body
	}
	// Repeat prose only: the tail of a code block or table, cut off from its start, reads as
	// noise at the head of a paragraph. Inside one block, any text will do.
	bk := s.blockAt(a)
	kind := s.blocks[bk].kind
	if kind == blockPara {
		for bk > 0 && s.blocks[bk-1].kind == blockPara && s.blocks[bk-1].start >= lb {
			bk--
		}
	}
	lb = max(lb, s.blocks[bk].start)
	if lb >= a {
		return a
	}
	x := s.idx
	k := x.pieceAtOrAfter(a)
	j := k
	for j > 0 && int(x.starts[j-1]) >= lb && int(x.cum[k]-x.cum[j-1]) <= s.overlap {
		j--
	}
	p := int(x.starts[j])
	if p >= a {
		return a
	}
	if kind == blockCode || kind == blockTable {
		// Code and tables repeat whole lines.
		if p > lb && s.text[p-1] != '\n' {
			p = s.boundary(levelLine, p, a)
		}
		if p = s.skipSpace(p, a); p >= a {
			return a
		}
		return p
	}
	// Move p to a word start: a non-space rune after a space.
	if p > lb {
		if r, _ := utf8.DecodeLastRuneInString(s.text[lb:p]); !isSpaceRune(r) {
			p = s.boundary(levelWord, p, a)
		}
	}
	p = s.skipSpace(p, a)
	if p >= a {
		return a
	}
	// A sentence end can sit before a list item's indentation: skip it.
	if e := s.skipSpace(s.sentenceEnd(p, a), a); e < a && x.approx(e, a) >= s.overlap/2 {
		return e
	}
	return p
}

// blockAt returns the index of the block that holds pos.
func (s *splitter) blockAt(pos int) int {
	lo, hi := 0, len(s.blocks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.blocks[mid].start <= pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(lo-1, 0)
}

// headingAt returns the heading whose section holds pos, or nil before the first heading.
func (s *splitter) headingAt(pos int) *heading {
	lo, hi := 0, len(s.heads)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.heads[mid].start <= pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil
	}
	return &s.heads[lo-1]
}

func (s *splitter) flush(a, b, tokens int) {
	c := Chunk{Index: len(s.out), Text: s.text[a:b], Start: a, End: b, Tokens: tokens}
	if h := s.headingAt(a); h != nil && len(h.path) > 0 {
		c.HeadingPath = h.path
	}
	s.out = append(s.out, c)
	s.prevStart = a
}
