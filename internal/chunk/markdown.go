package chunk

import "strings"

// The Markdown this package needs is only its block structure: where sections, paragraphs,
// fenced code and tables begin. It does not build a syntax tree; one pass over the lines finds
// the blocks, in the spirit of CommonMark but without its rarer corners (no lazy continuation,
// no HTML blocks, indented code is just text).

type blockKind uint8

const (
	blockPara    blockKind = iota // text lines up to a blank line; also lists, quotes, breaks
	blockHeading                  // an ATX heading line, or a setext heading with its underline
	blockCode                     // a fenced code block, fences included
	blockTable                    // consecutive lines starting with '|'
)

// block is a run of whole lines. Blocks partition the document: a block ends where the next
// one starts, so blank lines belong to the block before them.
type block struct {
	start, end int
	kind       blockKind
	level      int // heading level 1..6, for blockHeading
}

// heading is a section start. Its path includes itself; body is where its heading lines end.
type heading struct {
	start, body int
	path        []string
}

// lineInfo classifies one line (without its line break).
type lineKind uint8

const (
	lineText lineKind = iota
	lineBlank
	lineATX
	lineFence
	lineTable
	lineSetext // a run of '=' or '-' that may underline a paragraph
	lineBreak  // a thematic break that cannot be an underline (*** or ___ or spaced - - -)
)

// indent returns the offset of the first non-blank byte of line and whether it is at most three
// columns in (tabs count as four, so a tab makes the line indented code, not a marker).
func indent(line string) (int, bool) {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i, i <= 3 && (i == len(line) || line[i] != '\t')
}

func isBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c != ' ' && c != '\t' && c != '\r' && c != '\v' && c != '\f' {
			return false
		}
	}
	return true
}

// classify returns the kind of line and, for headings and fences, their level or fence length.
func classify(line string) (lineKind, int) {
	if isBlank(line) {
		return lineBlank, 0
	}
	i, ok := indent(line)
	if !ok {
		return lineText, 0
	}
	rest := line[i:]
	switch c := rest[0]; c {
	case '#':
		n := 0
		for n < len(rest) && rest[n] == '#' {
			n++
		}
		if n <= 6 && (n == len(rest) || rest[n] == ' ' || rest[n] == '\t' || rest[n] == '\r') {
			return lineATX, n
		}
	case '`', '~':
		n := 0
		for n < len(rest) && rest[n] == c {
			n++
		}
		// A backtick fence's info string may not hold a backtick (it would be inline code).
		if n >= 3 && (c == '~' || !strings.Contains(rest[n:], "`")) {
			return lineFence, n
		}
	case '|':
		return lineTable, 0
	case '=', '-', '*', '_':
		return classifyRule(rest)
	}
	return lineText, 0
}

// classifyRule tells a setext underline ("===", "---") from a thematic break ("***", "- - -")
// and from ordinary text such as a list item.
func classifyRule(rest string) (lineKind, int) {
	c := rest[0]
	n, spaced := 0, false
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case c:
			n++
		case ' ', '\t', '\r':
			if n > 0 && i+1 < len(rest) && !isBlank(rest[i:]) {
				spaced = true
			}
		default:
			return lineText, 0
		}
	}
	switch {
	case (c == '=' || c == '-') && !spaced:
		if c == '=' {
			return lineSetext, 1
		}
		if n >= 2 {
			return lineSetext, 2
		}
	case c != '=' && n >= 3:
		return lineBreak, 0
	}
	return lineText, 0
}

// isFenceClose reports whether line closes a fence of n or more c's.
func isFenceClose(line string, c byte, n int) bool {
	i, ok := indent(line)
	if !ok {
		return false
	}
	j := i
	for j < len(line) && line[j] == c {
		j++
	}
	return j-i >= n && isBlank(line[j:])
}

// startsListOrQuote reports whether a paragraph's first line is a list item or a quote, which
// a following "---" does not turn into a heading.
func startsListOrQuote(line string) bool {
	i, ok := indent(line)
	if !ok || i >= len(line) {
		return false
	}
	rest := line[i:]
	switch rest[0] {
	case '>':
		return true
	case '-', '*', '+':
		return len(rest) == 1 || rest[1] == ' ' || rest[1] == '\t'
	}
	j := 0
	for j < len(rest) && j < 9 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	return j > 0 && j < len(rest) && (rest[j] == '.' || rest[j] == ')') &&
		(j+1 == len(rest) || rest[j+1] == ' ' || rest[j+1] == '\t')
}

// atxText is the heading's text: no leading #s, no closing sequence, trimmed.
func atxText(line string, level int) string {
	i, _ := indent(line)
	s := strings.Trim(line[i+level:], " \t\r")
	j := len(s)
	for j > 0 && s[j-1] == '#' {
		j--
	}
	if j == 0 || s[j-1] == ' ' || s[j-1] == '\t' {
		s = strings.TrimRight(s[:j], " \t")
	}
	return s
}

// setextText joins a setext heading's lines with single spaces.
func setextText(para string) string {
	lines := strings.Split(strings.TrimRight(para, " \t\r\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.Trim(l, " \t\r")
	}
	return strings.Join(lines, " ")
}

// frontMatterEnd returns where a leading YAML front matter block ("---" ... "---" or "...")
// ends, or 0; without this its closing line would read as a setext underline.
func frontMatterEnd(text string) int {
	first, rest, ok := strings.Cut(text, "\n")
	if !ok || strings.TrimRight(first, " \t\r") != "---" {
		return 0
	}
	pos := len(first) + 1
	for len(rest) > 0 {
		line, after, found := strings.Cut(rest, "\n")
		pos += len(line)
		if found {
			pos++
		}
		if l := strings.TrimRight(line, " \t\r"); l == "---" || l == "..." {
			return pos
		}
		rest = after
	}
	return 0
}

// scanBlocks appends text's blocks to blocks and its headings to heads.
func scanBlocks(text string, blocks []block, heads []heading) ([]block, []heading) {
	var (
		open      = lineBlank // lineText or lineTable while such a block is open
		listy     bool        // the open paragraph started with a list item or quote
		inFence   bool
		fenceChar byte
		fenceLen  int
		titles    []string // the open headings, outermost first
		levels    []int
	)
	start := func(pos int, kind blockKind) {
		if n := len(blocks); n > 0 {
			blocks[n-1].end = pos
		}
		blocks = append(blocks, block{start: pos, end: len(text), kind: kind})
	}
	addHeading := func(pos, body, level int, title string) {
		for len(levels) > 0 && levels[len(levels)-1] >= level {
			levels, titles = levels[:len(levels)-1], titles[:len(titles)-1]
		}
		levels, titles = append(levels, level), append(titles, title)
		path := make([]string, 0, len(titles))
		for _, t := range titles {
			if t != "" { // an empty heading still closes deeper sections
				path = append(path, t)
			}
		}
		heads = append(heads, heading{start: pos, body: body, path: path[:len(path):len(path)]})
	}

	pos := 0
	if end := frontMatterEnd(text); end > 0 {
		start(0, blockPara)
		pos = end
	}
	for pos < len(text) {
		lineStart := pos
		line := text[pos:]
		if nl := strings.IndexByte(line, '\n'); nl >= 0 {
			line = line[:nl]
			pos += nl + 1
		} else {
			pos = len(text)
		}
		if inFence {
			if isFenceClose(line, fenceChar, fenceLen) {
				inFence = false
			}
			continue
		}
		kind, n := classify(line)
		switch kind {
		case lineBlank:
			open = lineBlank
			continue
		case lineATX:
			start(lineStart, blockHeading)
			blocks[len(blocks)-1].level = n
			addHeading(lineStart, pos, n, atxText(line, n))
			open = lineBlank
			continue
		case lineFence:
			start(lineStart, blockCode)
			i, _ := indent(line)
			inFence, fenceChar, fenceLen = true, line[i], n
			open = lineBlank
			continue
		case lineSetext:
			if open == lineText && !listy {
				b := &blocks[len(blocks)-1]
				b.kind, b.level = blockHeading, n
				addHeading(b.start, pos, n, setextText(text[b.start:lineStart]))
				open = lineBlank
				continue
			}
		case lineTable:
			if open != lineTable {
				start(lineStart, blockTable)
				open = lineTable
			}
			continue
		}
		if kind == lineBreak || kind == lineSetext {
			// A rule on its own: a block of its own that nothing continues.
			start(lineStart, blockPara)
			open = lineBlank
			continue
		}
		if open != lineText {
			start(lineStart, blockPara)
			open, listy = lineText, startsListOrQuote(line)
		}
	}
	if len(blocks) > 0 {
		// Leading blank lines go with the first block, so blocks cover the whole text.
		blocks[0].start = 0
	}
	return blocks, heads
}
