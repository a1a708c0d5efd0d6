package chunk_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Generated Markdown for property tests and the benchmark: seeded, so every run sees the same
// documents.

var commonWords = strings.Fields(`the of and to in a is that for it as was with be by on not he
this are or his from at which but have an they you were her she there been one all we their has
would when if so no will more can out up who them some could time into only then new like other
about over than its also use two these may any first well way our even because most after through
where much should between each those before many system data server request user install config
value file error build run test query index cache token chunk document section page model vector`)

// syllables make rarer made-up words, so the vocabulary has a long tail as real text does.
var syllables = strings.Fields(`ka lo mi ne ru sa ti vo zen pra qua ster ing tion al er ly ment
ous ive ize con pro re un dis com ex`)

type docGen struct {
	r *rand.Rand
	b strings.Builder
}

func (g *docGen) word() string {
	if g.r.IntN(10) < 8 {
		// Zipf-like: low indexes far more often.
		i := int(float64(len(commonWords)) * g.r.Float64() * g.r.Float64())
		return commonWords[i]
	}
	n := 2 + g.r.IntN(3)
	var w strings.Builder
	for range n {
		w.WriteString(syllables[g.r.IntN(len(syllables))])
	}
	return w.String()
}

func (g *docGen) sentence() {
	n := 5 + g.r.IntN(20)
	for i := range n {
		w := g.word()
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			g.b.WriteByte(' ')
		}
		switch g.r.IntN(40) {
		case 0:
			w = "`" + w + "`"
		case 1:
			w = "**" + w + "**"
		case 2:
			w += ","
		case 3:
			w = fmt.Sprint(g.r.IntN(100000))
		}
		g.b.WriteString(w)
	}
	g.b.WriteString([]string{".", ".", ".", "!", "?"}[g.r.IntN(5)])
}

func (g *docGen) paragraph() {
	n := 1 + g.r.IntN(8)
	for i := range n {
		if i > 0 {
			g.b.WriteByte(' ')
		}
		g.sentence()
	}
	g.b.WriteString("\n\n")
}

func (g *docGen) list() {
	n := 2 + g.r.IntN(8)
	for range n {
		g.b.WriteString("- ")
		g.sentence()
		g.b.WriteByte('\n')
	}
	g.b.WriteByte('\n')
}

func (g *docGen) code() {
	g.b.WriteString("```go\n")
	n := 3 + g.r.IntN(25)
	for range n {
		fmt.Fprintf(&g.b, "%sif %s := %s(%d); err != nil { return %s }\n",
			strings.Repeat("\t", g.r.IntN(3)), g.word(), g.word(), g.r.IntN(1000), g.word())
	}
	g.b.WriteString("```\n\n")
}

func (g *docGen) table() {
	g.b.WriteString("| name | value | note |\n|---|---|---|\n")
	n := 2 + g.r.IntN(10)
	for range n {
		fmt.Fprintf(&g.b, "| %s | %d | %s %s |\n", g.word(), g.r.IntN(10000), g.word(), g.word())
	}
	g.b.WriteByte('\n')
}

func (g *docGen) heading(level int) {
	fmt.Fprintf(&g.b, "%s %s %s\n\n", strings.Repeat("#", level), strings.ToUpper(g.word()[:1]), g.word())
}

// markdown returns about size bytes of ordinary Markdown: nested sections of paragraphs,
// lists, code and tables.
func markdown(seed uint64, size int) string {
	g := &docGen{r: rand.New(rand.NewPCG(seed, 7))}
	for g.b.Len() < size {
		switch k := g.r.IntN(20); {
		case k == 0:
			g.heading(1)
		case k < 3:
			g.heading(2 + g.r.IntN(3))
		case k < 12:
			g.paragraph()
		case k < 15:
			g.list()
		case k < 18:
			g.code()
		default:
			g.table()
		}
	}
	return g.b.String()
}
