package chunk

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Token counting.
//
// Running the library's tokenizer over every candidate chunk would cost a regular-expression
// pass (on a []rune copy) and a BPE merge per piece, again and again for the same text. Instead
// the pre-tokenizer below, a hand-written equivalent of the library's cl100k_base split pattern,
// cuts text into the same pieces the library would, and each piece's count comes from a cache,
// or on a miss from a byte-pair merge over the library's vocabulary (BPE never merges across
// pieces, so a text's count is the sum of its pieces' counts). The whole document is cut once;
// a range's count is then a difference of prefix sums, corrected at its two ends (see
// tokenIndex.count).
//
// The equivalence is with github.com/tiktoken-go/tokenizer v0.10.0 as it runs, including two
// quirks of its generated matcher that differ from OpenAI's tiktoken: U+007F (DEL) matches no
// branch and is dropped (zero tokens), and a whitespace run holding a line break ends after the
// first group of line breaks rather than the last. TestCountTokensMatchesLibrary and
// FuzzCountTokens hold the two implementations to the same counts.

// tokenizerName is the encoding's short name in Fingerprint.
const tokenizerName = "cl100k"

var (
	vocabOnce sync.Once
	// The ranks (= ids) BPE merges by: tokens of up to 15 bytes in vocab, a flat table keyed
	// by packed bytes like the piece cache (a Go map's string hashing made misses slow),
	// longer ones in longRanks.
	vocab     []vocabEntry
	longRanks map[string]uint32
)

const (
	vocabBits = 18 // 256Ki slots for 100Ki tokens
	noRank    = ^uint32(0)
)

type vocabEntry struct {
	k0, k1 uint64 // as tableEntry's, with the length in k1's top byte; k1 == 0 is empty
	rank   uint32
}

func vocabSlot(k0, k1 uint64) uint64 {
	// The high bits of a product depend on all of its input's bits; the low ones do not.
	h := k0*0x9E3779B97F4A7C15 + k1
	return ((h ^ h>>31) * 0xC2B2AE3D27D4EB4F) >> (64 - vocabBits)
}

func vocabRank(k0, k1 uint64) uint32 {
	for slot := vocabSlot(k0, k1); ; slot = (slot + 1) & (1<<vocabBits - 1) {
		en := &vocab[slot]
		if en.k1 == 0 {
			return noRank
		}
		if en.k0 == k0 && en.k1 == k1 {
			return en.rank
		}
	}
}

// loadVocabulary builds the cl100k_base codec and the rank tables once: tens of
// milliseconds, and all are read-only after. The library keeps its ranks unexported, so they
// are read back through Decode, one token at a time.
func loadVocabulary() {
	vocabOnce.Do(func() {
		c, err := tokenizer.Get(tokenizer.Cl100kBase)
		if err != nil {
			// The encoding is compiled into the library; this cannot fail at run time.
			panic("chunk: cl100k_base codec: " + err.Error())
		}
		const vocabSize = 100256 // ids 0..100255 are ordinary tokens; specials come after
		vocab = make([]vocabEntry, 1<<vocabBits)
		longRanks = make(map[string]uint32)
		for id := range uint(vocabSize) {
			tok, err := c.Decode([]uint{id})
			if err != nil || tok == "" {
				continue
			}
			for i := 0; i+1 < len(tok); i++ {
				p := uint16(tok[i]) | uint16(tok[i+1])<<8
				pairInToken[p/64] |= 1 << (p % 64)
			}
			if len(tok) > 15 {
				longRanks[tok] = uint32(id)
				continue
			}
			k0, k1 := key(tok, 0, len(tok))
			k1 |= uint64(len(tok)) << 56
			slot := vocabSlot(k0, k1)
			for vocab[slot].k1 != 0 {
				slot = (slot + 1) & (1<<vocabBits - 1)
			}
			vocab[slot] = vocabEntry{k0: k0, k1: k1, rank: uint32(id)}
		}
		for p := range pairRank {
			pairRank[p] = vocabRank(uint64(p), 2<<56) // two bytes, the length in k1's top byte
		}

		for p := range pairTokens {
			pairTokens[p] = uint8(bpe(string([]byte{byte(p), byte(p >> 8)})))
		}
	})
}

// pairTokens[b0 | b1<<8] is the count of the two-byte piece b0 b1: a seventh of all pieces,
// looked up without hashing or a cache miss. (A one-byte piece is always one token: every byte
// is in the vocabulary, and an invalid byte becomes U+FFFD, which is too.)
var pairTokens [1 << 16]uint8

// pairInToken has bit b0 | b1<<8 set when the bytes b0 b1 occur, in that order, inside some
// token. Where they do not, no merge can join the bytes on either side of them, so a piece's
// count is the sum of its two sides' counts (see countParts).
var pairInToken [1 << 16 / 64]uint64

// pairRank[b0 | b1<<8] is the rank of the two-byte token b0 b1, or noRank: the first round
// of every merge reads it instead of the large table.
var pairRank [1 << 16]uint32

// maxScanBPE is the longest piece merged by rescanning for the lowest rank after each merge;
// longer ones use a heap, as the library does from 96 bytes (both give the same merges).
const maxScanBPE = 32

// sub128 returns the n bytes (n <= 15) at offset a of the 16 bytes packed in lo, hi, packed
// the same way. Go defines shifts by 64 or more as giving zero, which the edges rely on.
func sub128(lo, hi uint64, a, n int) (uint64, uint64) {
	s := uint(8 * a)
	var k0, k1 uint64
	if a < 8 {
		k0, k1 = lo>>s|hi<<(64-s), hi>>s
	} else {
		k0 = hi >> (s - 64)
	}
	if n < 8 {
		return k0 & (1<<(8*n) - 1), 0
	}
	return k0, k1 & (1<<(8*(n-8)) - 1)
}

// bpe returns the number of tokens byte-pair encoding makes of one piece, exactly as the
// library's Count does: invalid bytes read as U+FFFD each (its matcher runs on []rune(s)),
// a piece in the vocabulary is one token, and otherwise the lowest-ranked adjacent pair
// merges first, leftmost among equals. The vocabulary must be loaded.
func bpe(piece string) int {
	if !utf8.ValidString(piece) {
		piece = string([]rune(piece))
	}
	var lo, hi uint64
	short := len(piece) <= 16
	if short {
		lo, hi = key(piece, 0, len(piece))
	}
	rankOf := func(a, b int) uint32 {
		n := b - a
		if n > 15 {
			if r, ok := longRanks[piece[a:b]]; ok {
				return r
			}
			return noRank
		}
		var k0, k1 uint64
		if short {
			k0, k1 = sub128(lo, hi, a, n)
		} else {
			k0, k1 = key(piece, a, b)
		}
		return vocabRank(k0, k1|uint64(n)<<56)
	}
	if rankOf(0, len(piece)) != noRank {
		return 1
	}
	if len(piece) > maxScanBPE {
		return bpeHeap(piece, rankOf)
	}
	type part struct {
		off  int
		rank uint32
	}
	var buf [maxScanBPE + 1]part
	parts := buf[:len(piece)+1]
	rank := func(i, skip int) uint32 {
		if i+skip+2 < len(parts) {
			return rankOf(parts[i].off, parts[i+skip+2].off)
		}
		return noRank
	}
	for i := range parts {
		parts[i] = part{i, noRank}
	}
	for i := 0; i < len(parts)-2; i++ {
		parts[i].rank = pairRank[uint16(piece[i])|uint16(piece[i+1])<<8]
	}
	for len(parts) > 1 {
		best, at := noRank, 0
		for i, p := range parts[:len(parts)-1] {
			if p.rank < best {
				best, at = p.rank, i
			}
		}
		if best == noRank {
			break
		}
		parts[at].rank = rank(at, 1)
		if at > 0 {
			parts[at-1].rank = rank(at-1, 1)
		}
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	return len(parts) - 1
}

// bpeHeap merges a long piece in O(n log n): parts form a linked list, and merge candidates
// wait in a heap ordered by rank, then offset, so the leftmost of equal ranks merges first.
// A candidate whose part has changed since it was pushed no longer matches and is skipped.
func bpeHeap(piece string, rankOf func(a, b int) uint32) int {
	type node struct {
		prev, next int32
		rank       uint32 // of merging this part with the next
	}
	type cand struct {
		rank uint32
		off  int32
	}
	n := int32(len(piece))
	nodes := make([]node, n+1)
	for i := range nodes {
		nodes[i] = node{prev: int32(i) - 1, next: int32(i) + 1, rank: noRank}
	}
	nodes[n].next = -1
	rankAt := func(i int32) uint32 {
		j := nodes[i].next
		if j < 0 || nodes[j].next < 0 {
			return noRank
		}
		return rankOf(int(i), int(nodes[j].next))
	}
	less := func(a, b cand) bool { return a.rank < b.rank || a.rank == b.rank && a.off < b.off }
	heap := make([]cand, 0, n)
	push := func(c cand) {
		heap = append(heap, c)
		for i := len(heap) - 1; i > 0; {
			p := (i - 1) / 2
			if !less(heap[i], heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() cand {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		for i := 0; ; {
			c := 2*i + 1
			if c >= len(heap) {
				break
			}
			if c+1 < len(heap) && less(heap[c+1], heap[c]) {
				c++
			}
			if !less(heap[c], heap[i]) {
				break
			}
			heap[i], heap[c] = heap[c], heap[i]
			i = c
		}
		return top
	}
	for i := int32(0); i+2 <= n; i++ {
		if r := pairRank[uint16(piece[i])|uint16(piece[i+1])<<8]; r != noRank {
			nodes[i].rank = r
			push(cand{r, i})
		}
	}
	parts := int(n)
	for len(heap) > 0 {
		top := pop()
		i := top.off
		if nodes[i].rank != top.rank {
			continue
		}
		j := nodes[i].next
		k := nodes[j].next
		nodes[j].rank = noRank
		nodes[i].next = k
		if k >= 0 {
			nodes[k].prev = i
		}
		parts--
		for _, b := range [2]int32{i, nodes[i].prev} {
			if b < 0 {
				continue
			}
			if nodes[b].rank = rankAt(b); nodes[b].rank != noRank {
				push(cand{nodes[b].rank, b})
			}
		}
	}
	return parts
}

// Character classes of the split pattern, for ASCII bytes. Non-ASCII runes go through the
// unicode package, as the library's matcher does.
const (
	clLetter  uint8 = 1 << iota // \p{L}
	clNumber                    // \p{N}
	clSpace                     // \s
	clPunct                     // [^\s\p{L}\p{N}] as the library sees it: DEL is not in it
	clPrefix                    // [^\r\n\p{L}\p{N}], again without DEL
	clNewline                   // \r or \n
)

var asciiClass = func() (t [128]uint8) {
	for c := range 128 {
		r := rune(c)
		switch {
		case unicode.IsLetter(r):
			t[c] = clLetter
		case unicode.IsNumber(r):
			t[c] = clNumber
		case unicode.IsSpace(r):
			t[c] = clSpace
			if r != '\r' && r != '\n' {
				t[c] |= clPrefix
			} else {
				t[c] |= clNewline
			}
		case r == 0x7f:
			// Left out of both sets by the library's generated matcher.
		default:
			t[c] = clPunct | clPrefix
		}
	}
	return t
}()

// runeAt decodes the rune at s[i]; an invalid byte is a one-byte U+FFFD, as in []rune(s).
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// isLetterAt reports whether s[i:] starts with a letter, and that letter's length. Hot
// callers test ASCII first themselves: this does not inline.
func isLetterAt(s string, i int) (bool, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return isASCIILetter(c), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r), n
}

func scanLetters(s string, i int) int {
	for {
		// Eight bytes at a time while they are ASCII letters: one branch per word where a
		// byte loop's exit was mispredicted at every word's end.
		for i+8 <= len(s) {
			m := asciiLetters8(load8(s, i))
			if m == 0x8080808080808080 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(^m&0x8080808080808080) / 8
			break
		}
		if i >= len(s) {
			return i
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiClass[c]&clLetter == 0 {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) {
			return i
		}
		i += n
	}
}

// asciiLetters8 sets the top bit of each byte of w, eight bytes of text, that is an ASCII
// letter, and clears every other bit.
func asciiLetters8(w uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	x := (w | 0x20*ones) &^ high // lower case; the top bits, non-ASCII bytes, are added back below
	geA := x + (0x80-'a')*ones   // top bit set where x >= 'a'; no byte carries into the next
	gtZ := x + (0x7f-'z')*ones   // top bit set where x > 'z'
	return (geA &^ gtZ &^ w) & high
}

// scanNumbers takes up to max more numbers (\p{N}{1,3} after the first).
func scanNumbers(s string, i, max int) int {
	for ; max > 0 && i < len(s); max-- {
		r, n := runeAt(s, i)
		if r < utf8.RuneSelf {
			if asciiClass[r]&clNumber == 0 {
				return i
			}
		} else if !unicode.IsNumber(r) {
			return i
		}
		i += n
	}
	return i
}

func isPunctRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&clPunct != 0
	}
	return !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
}

func scanPunct(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiClass[c]&clPunct == 0 {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isPunctRune(r) {
			return i
		}
		i += n
	}
	return i
}

func scanNewlines(s string, i int) int {
	for i < len(s) && (s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isSpaceRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&clSpace != 0
	}
	return unicode.IsSpace(r)
}

// spacePiece is the piece for a whitespace run starting at s[i] (the last three branches).
func spacePiece(s string, i int) int {
	j, last, firstNL := i, i, -1
	for j < len(s) {
		c := s[j]
		n := 1
		if c < utf8.RuneSelf {
			if asciiClass[c]&clSpace == 0 {
				break
			}
		} else {
			var r rune
			if r, n = utf8.DecodeRuneInString(s[j:]); !unicode.IsSpace(r) {
				break
			}
		}
		if firstNL < 0 && (c == '\n' || c == '\r') {
			firstNL = j
		}
		last = j
		j += n
	}
	switch {
	case firstNL >= 0:
		// \s*[\r\n]+ — the library backtracks to the first line break, not the last.
		return scanNewlines(s, firstNL)
	case j == len(s) || last == i:
		// \s+(?!\S) at the end of text, or \s+ for a lone space before a non-space.
		return j
	default:
		// \s+(?!\S) gives back the last space, which then leads the next piece.
		return last
	}
}

// nextPiece returns the end of the pre-token piece that starts at s[i], and whether the piece
// is one the library skips (DEL), which counts zero tokens.
func nextPiece(s string, i int) (int, bool) {
	c := s[i]
	if c < utf8.RuneSelf {
		if c == '\'' && i+1 < len(s) {
			// (?i:'s|'t|'re|'ve|'m|'ll|'d); case folding lets 'ſ' (U+017F) stand for s.
			switch s[i+1] {
			case 's', 'S', 't', 'T', 'm', 'M', 'd', 'D':
				return i + 2, false
			case 'r', 'R', 'v', 'V':
				if i+2 < len(s) && s[i+2]|0x20 == 'e' {
					return i + 3, false
				}
			case 'l', 'L':
				if i+2 < len(s) && s[i+2]|0x20 == 'l' {
					return i + 3, false
				}
			case 0xC5:
				if i+2 < len(s) && s[i+2] == 0xBF {
					return i + 3, false
				}
			}
		}
		cl := asciiClass[c]
		switch {
		case cl&clLetter != 0:
			return scanLetters(s, i+1), false
		case cl&clNumber != 0:
			return scanNumbers(s, i+1, 2), false
		}
		if cl&clPrefix != 0 && i+1 < len(s) {
			if c1 := s[i+1]; c1 < utf8.RuneSelf {
				if isASCIILetter(c1) {
					return scanLetters(s, i+2), false
				}
			} else if ok, n := isLetterAt(s, i+1); ok {
				return scanLetters(s, i+1+n), false
			}
		}
		j := i
		if c == ' ' {
			j++
		}
		if k := scanPunct(s, j); k > j {
			return scanNewlines(s, k), false
		}
		if cl&clSpace != 0 {
			return spacePiece(s, i), false
		}
		return i + 1, true // DEL
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r):
		return scanLetters(s, i+n), false
	case unicode.IsNumber(r):
		return scanNumbers(s, i+n, 2), false
	}
	// Every other non-ASCII rune, spaces included, may lead a run of letters.
	if i+n < len(s) {
		if ok, m := isLetterAt(s, i+n); ok {
			return scanLetters(s, i+n+m), false
		}
	}
	if !unicode.IsSpace(r) {
		return scanNewlines(s, scanPunct(s, i+n)), false
	}
	return spacePiece(s, i), false
}

// Every piece's count is cached. Pieces of 3 to 15 bytes, nearly all of them, live in a flat
// open-addressing table keyed by their bytes packed into two words: a Go map with string keys
// costs a string hash and compare per lookup, which was most of Split's time. Longer pieces
// are few but can be costly to merge (runs of hundreds of spaces in indented text), so they
// are cached too, in a map under a byte budget. Both are emptied when full, so a long-lived
// process that moves between languages keeps the pieces it sees now.
const (
	tableBits     = 17
	tableSize     = 1 << tableBits
	maxTableUsed  = tableSize / 2
	maxLongPiece  = 4096    // longer pieces are counted each time
	maxLongBudget = 4 << 20 // bytes of long pieces kept
)

type tableEntry struct {
	k0, k1 uint64
}

// pieceCache maps pieces to their token counts. It belongs to one goroutine at a time (it
// lives in a splitState).
type pieceCache struct {
	table *[tableSize]tableEntry
	used  int
	long  map[string]int32 // 16..maxLongPiece bytes, and short pieces of over 15 tokens
	bytes int              // in long's keys
}

// load8 reads s[i:i+8] little-endian; the compiler turns it into one load, with one bounds
// check for the slice (indexing s[i+7] first would leave one per byte).
func load8(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// loadShort reads up to 8 bytes of s[i:e], zero-padded.
func loadShort(s string, i, e int) uint64 {
	var k uint64
	for j := e - 1; j >= i; j-- {
		k = k<<8 | uint64(s[j])
	}
	return k
}

// keyMasks[n] keeps the first n bytes of two packed words: a table rather than a branch on
// n, whose outcome follows the text's word lengths and was mispredicted often.
var keyMasks = func() (m [17][2]uint64) {
	for n := range 17 {
		for b := range n {
			m[n][b/8] |= 0xFF << (8 * (b % 8))
		}
	}
	return m
}()

// key packs text[i:e] (at most 16 bytes) into two words, reading past e when text allows
// and masking the excess.
func key(text string, i, e int) (uint64, uint64) {
	n := e - i
	if i+16 <= len(text) {
		m := &keyMasks[n]
		return load8(text, i) & m[0], load8(text, i+8) & m[1]
	}
	if n <= 8 {
		return loadShort(text, i, e), 0
	}
	return loadShort(text, i, i+8), loadShort(text, i+8, e)
}

// tokenBits holds a table entry's count, in k1's top four bits.
const tokenBits = 0xF << 60

// tableSlot is the piece table's home slot for a key.
func tableSlot(k0, k1 uint64) uint64 {
	// The high bits of a product depend on all of its input's bits; the low ones do not.
	h := k0*0x9E3779B97F4A7C15 + k1
	return ((h ^ h>>31) * 0xC2B2AE3D27D4EB4F) >> (64 - tableBits)
}

func (c *pieceCache) ensureTable() {
	if c.table == nil {
		c.table = new([tableSize]tableEntry)
	}
}

// countAt returns the token count of the piece text[i:e]. DEL, a piece of its own that the
// library skips, counts 0.
func (c *pieceCache) countAt(text string, i, e int) int {
	n := e - i
	switch {
	case n == 1:
		return int(oneByteTokens[text[i]])
	case n == 2:
		return int(pairTokens[uint16(text[i])|uint16(text[i+1])<<8])
	case n > 15:
		return c.countLong(text[i:e])
	}
	k0, k1 := key(text, i, e)
	k1 |= uint64(n) << 56
	h := tableSlot(k0, k1)
	c.ensureTable()
	table := c.table
	for slot := h; ; slot = (slot + 1) & (tableSize - 1) {
		en := &table[slot&(tableSize-1)]
		if en.k1 == 0 {
			break
		}
		if en.k0 == k0 && en.k1&^tokenBits == k1 {
			return int(en.k1 >> 60)
		}
	}
	tokens := bpe(text[i:e])
	if tokens > 15 {
		return c.countLong(text[i:e])
	}
	if c.used >= maxTableUsed {
		clear(table[:])
		c.used = 0
	}
	slot := h
	for table[slot&(tableSize-1)].k1 != 0 {
		slot = (slot + 1) & (tableSize - 1)
	}
	table[slot&(tableSize-1)] = tableEntry{k0: k0, k1: k1 | uint64(tokens)<<60}
	c.used++
	return tokens
}

func (c *pieceCache) countLong(piece string) int {
	if len(piece) > maxLongPiece {
		return c.countParts(piece)
	}
	if n, ok := c.long[piece]; ok {
		return int(n)
	}
	n := c.countParts(piece)
	c.storeLong(piece, n)
	return n
}

// storeLong caches a long piece's count, emptying the cache when it is over its budget.
func (c *pieceCache) storeLong(piece string, n int) {
	if c.long == nil {
		c.long = make(map[string]int32, 1024)
	} else if c.bytes+len(piece) > maxLongBudget {
		clear(c.long)
		c.bytes = 0
	}
	// Clone: a substring key would keep the whole document alive.
	c.long[strings.Clone(piece)] = int32(n)
	c.bytes += len(piece)
}

// countParts counts a long piece as the sum of its parts, cut wherever two neighbouring bytes
// occur together in no token (pairInToken), each part through the cache. Byte-pair encoding
// can never merge across such a cut: a merge there would make a token holding those two
// bytes. And since merges on one side never change the ranks on the other, each side goes
// through the same merges as it would alone. Long pieces that are not cached are mostly
// Markdown table rules ("|:-----|-----:|"), each of its own width, which cut at every "-|",
// "|:" and ":|" into parts that recur: counting them whole was most of a cold Split's time.
// Parts start at character boundaries of valid UTF-8, so each is its own valid text (bpe reads
// an invalid byte as U+FFFD, which would not add up).
func (c *pieceCache) countParts(piece string) int {
	if !utf8.ValidString(piece) {
		return bpe(piece)
	}
	total, a := 0, 0
	for p := 1; p < len(piece); p++ {
		pair := uint16(piece[p-1]) | uint16(piece[p])<<8
		if pairInToken[pair/64]&(1<<(pair%64)) == 0 && utf8.RuneStart(piece[p]) {
			total += c.countPart(piece, a, p)
			a = p
		}
	}
	if a == 0 {
		return bpe(piece)
	}
	return total + c.countPart(piece, a, len(piece))
}

// countPart counts piece[a:b], a part with no cut in it.
func (c *pieceCache) countPart(piece string, a, b int) int {
	switch {
	case b-a <= 15:
		return c.countAt(piece, a, b)
	case b-a > maxLongPiece:
		return bpe(piece[a:b])
	}
	part := piece[a:b]
	if n, ok := c.long[part]; ok {
		return int(n)
	}
	n := bpe(part)
	c.storeLong(part, n)
	return n
}

// countString is the token count of s: the sum of its pieces' counts.
func (c *pieceCache) countString(s string) int {
	total := 0
	for i := 0; i < len(s); {
		e, skip := nextPiece(s, i)
		if !skip {
			total += c.countAt(s, i, e)
		}
		i = e
	}
	return total
}

// tokenIndex holds a document's pieces: starts[k] is piece k's offset and cum[k] the tokens in
// pieces before it; both end with a sentinel for the document's end.
type tokenIndex struct {
	text   string
	starts []int32
	cum    []int32
	// buckets[p>>bucketShift] is the first piece that starts at or after that bucket's first
	// byte, so a position's piece is searched for among a few pieces, not the whole document.
	buckets []int32
	cache   *pieceCache
}

const bucketShift = 6

// build indexes text in passes that each do one thing: find the pieces, count them, fill the
// buckets. A loop that did all three spent most of its instructions moving its many live
// values between registers and the stack around the calls some pieces need.
func (x *tokenIndex) build(text string, cache *pieceCache) {
	x.text, x.cache = text, cache
	if want := len(text)/4 + 2; cap(x.starts) < want {
		x.starts = make([]int32, 0, want)
		x.cum = make([]int32, 0, want)
	}
	nb := len(text)>>bucketShift + 2
	if cap(x.buckets) < nb {
		x.buckets = make([]int32, nb)
	}
	x.starts = appendPieces(x.starts[:0], text)
	x.cum = cache.appendCounts(x.cum[:0], text, x.starts)
	// buckets[b] is the first piece at or after byte b<<bucketShift (the end sentinel after
	// the last piece): one past the last piece that starts in an earlier bucket. Each piece
	// marks the bucket after its own (a later piece overwrites an earlier one), and buckets
	// left unmarked take the previous bucket's value. No branch on the text, unlike walking
	// pieces and buckets side by side.
	buckets, starts := x.buckets[:nb], x.starts
	for b := range buckets {
		buckets[b] = -1
	}
	for k, st := range starts[:len(starts)-1] {
		buckets[st>>bucketShift+1] = int32(k + 1)
	}
	buckets[0] = 0
	for b := 1; b < len(buckets); b++ {
		if buckets[b] < 0 {
			buckets[b] = buckets[b-1]
		}
	}
	x.buckets = buckets
}

// appendPieces appends the offsets of text's pieces to starts, and len(text) after them.
func appendPieces(starts []int32, text string) []int32 {
	const high = 0x8080808080808080
	for i := 0; i < len(text); {
		starts = append(starts, int32(i))
		// Most pieces are a word, alone or after a space: take those without the full match,
		// their first eight letters at once.
		j := i
		if text[i] == ' ' {
			j++
		}
		if j >= len(text) || !isASCIILetter(text[j]) {
			i, _ = nextPiece(text, i) // the one piece skipped, DEL, counts 0 (countAt)
			continue
		}
		if i = j + 1; i+8 > len(text) {
			i = scanLetters(text, i)
			continue
		}
		m := asciiLetters8(load8(text, i))
		if m == high {
			i = scanLetters(text, i+8)
			continue
		}
		if i += bits.TrailingZeros64(^m&high) / 8; text[i] >= utf8.RuneSelf {
			i = scanLetters(text, i) // maybe a letter outside ASCII
		}
	}
	return append(starts, int32(len(text)))
}

func isASCIILetter(c byte) bool { return (c|0x20)-'a' < 26 }

// appendCounts appends to cum, for each piece of text that starts lists (with its end
// sentinel), the tokens in the pieces before it, and the total after them. It works in two
// loops: the first counts the pieces that need no call, one or two bytes or a short piece
// found in the table, and marks the rest; the second counts those through countAt and sums. Kept apart, neither loop spills its registers around a call on its fast
// path (the general per-piece call was a third of Split's instructions).
func (c *pieceCache) appendCounts(cum []int32, text string, starts []int32) []int32 {
	c.ensureTable()
	table := c.table
	np := len(starts) - 1
	base := len(cum)
	cum = slices.Grow(cum, np+1)[:base+np+1]
	counts := cum[base : base+np]
	for k, i32 := range starts[:np] {
		i, n := int(i32), int(starts[k+1]-i32)
		v := int32(-1)
		switch {
		case n == 1:
			v = int32(oneByteTokens[text[i]])
		case n == 2:
			v = int32(pairTokens[uint16(text[i])|uint16(text[i+1])<<8])
		case n <= 15 && i+16 <= len(text):
			t := text[i : i+16]
			m := &keyMasks[n&15] // n < 16: the mask drops the bounds check
			k0 := load8(t, 0) & m[0]
			k1 := load8(t, 8)&m[1] | uint64(n)<<56
			for slot := tableSlot(k0, k1); ; slot = (slot + 1) & (tableSize - 1) {
				en := &table[slot]
				if en.k0 == k0 && en.k1&^tokenBits == k1 {
					v = int32(en.k1 >> 60)
					break
				}
				if en.k1 == 0 {
					break // not cached: countAt merges and stores it
				}
			}
		}
		counts[k] = v
	}
	total := int32(0)
	for k, v := range counts {
		if v < 0 {
			v = int32(c.countAt(text, int(starts[k]), int(starts[k+1])))
		}
		counts[k] = total
		total += v
	}
	cum[base+np] = total
	return cum
}

// oneByteTokens is the count of a one-byte piece: 1, but DEL, which the library skips, is 0.
var oneByteTokens = func() (t [256]uint8) {
	for b := range t {
		t[b] = 1
	}
	t[0x7f] = 0
	return t
}()

// pieceAtOrAfter returns the index of the first piece that starts at or after pos.
func (x *tokenIndex) pieceAtOrAfter(pos int) int {
	b := pos >> bucketShift
	lo, hi := int(x.buckets[b]), int(x.buckets[b+1])
	p := int32(pos)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if x.starts[mid] < p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// count returns the token count of text[a:b], exactly when text[a:b] ends in a non-space rune
// (as every trimmed chunk does). Pieces are found by matching forward with no look-behind, so
// once a piece of text[a:b] ends where a document piece ends, the two agree from there on; and
// a document piece that ends at or before b does not depend on what follows b unless it is
// whitespace reaching b. So only the cut pieces at the two ends are matched again.
func (x *tokenIndex) count(a, b int) int {
	if a >= b {
		return 0
	}
	s := x.text[:b]
	n := 0
	k := x.pieceAtOrAfter(a)
	pos := a
	for pos < b && int(x.starts[k]) != pos {
		e, skip := nextPiece(s, pos)
		if !skip {
			n += x.cache.countAt(x.text, pos, e)
		}
		pos = e
		for int(x.starts[k]) < pos {
			k++
		}
	}
	if pos >= b {
		return n
	}
	m := x.pieceAtOrAfter(b)
	if int(x.starts[m]) == b {
		return n + int(x.cum[m]-x.cum[k])
	}
	// Piece m-1 runs past b: match its start to b again.
	last := m - 1
	n += int(x.cum[last] - x.cum[k])
	for pos = int(x.starts[last]); pos < b; {
		e, skip := nextPiece(s, pos)
		if !skip {
			n += x.cache.countAt(x.text, pos, e)
		}
		pos = e
	}
	return n
}

// approx returns the tokens of the whole pieces between a and b, cheaply; for overlap sizing,
// where "about" is enough.
func (x *tokenIndex) approx(a, b int) int {
	return int(x.cum[x.pieceAtOrAfter(b)] - x.cum[x.pieceAtOrAfter(a)])
}
