// Package htmlmd turns a fetched HTML page into Markdown for chunking and embedding: it keeps
// the page's main content (headings, paragraphs, lists, tables, code blocks with their
// language, links, images' alt text) and drops the chrome around it (navigation, headers and
// footers, sidebars, scripts, forms). It knows nothing about fetching, chunks or storage; the
// caller caps the input size.
//
// Hostile input is expected: Convert does not panic, does not recurse without bound and
// returns valid UTF-8 whatever it is given.
package htmlmd

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/strikethrough"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/table"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Options tunes a conversion. The zero value is ready to use.
type Options struct {
	// BaseURL is the page's address; relative links are resolved against it (or against the
	// page's <base href>, itself resolved against BaseURL). Empty: links stay as written.
	BaseURL string
	// FullPage keeps everything but scripts, styles and other non-content elements: no main
	// content selection and no dropping of navigation, headers, footers, sidebars or forms.
	// Defaults to false.
	FullPage bool
}

// Result is a converted page.
type Result struct {
	// Markdown is the page's content, UTF-8, without trailing newline. Empty when the page
	// has no text.
	Markdown string
	// Title is the text of <title>, else of the first <h1>, whitespace collapsed; may be empty.
	Title string
}

// Depth caps. The parser refuses anything deeper than 512 open elements; flatten keeps well
// under that, and the retry after a parse failure much further under.
const (
	maxDepth      = 256
	maxDepthRetry = 64
)

// converterOnce builds the converter once: registering plugins is not cheap, and a built
// converter is safe for concurrent use (each conversion has its own state).
var converterOnce = sync.OnceValue(func() *converter.Converter {
	return converter.NewConverter(converter.WithPlugins(
		base.NewBasePlugin(),
		commonmark.NewCommonmarkPlugin(
			// The default separates adjacent lists with an HTML comment: noise in chunks.
			commonmark.WithListEndComment(false),
			commonmark.WithLinkEmptyHrefBehavior(commonmark.LinkBehaviorSkip),
			commonmark.WithLinkEmptyContentBehavior(commonmark.LinkBehaviorSkip),
		),
		table.NewTablePlugin(
			table.WithSkipEmptyRows(true),
			table.WithHeaderPromotion(true),
		),
		strikethrough.NewStrikethroughPlugin(),
	))
})

// Convert turns a page into Markdown. An error means the converter itself failed; a page that
// cannot be parsed as a tree (beyond the depth caps even after flattening) still gives its
// text, as paragraphs, with no error.
func Convert(src string, opts Options) (res Result, err error) {
	// The converter is a dependency we do not control; a panic in it must not take the
	// worker down with it. Convert's own code is fuzzed not to panic.
	defer func() {
		if r := recover(); r != nil {
			res, err = Result{}, fmt.Errorf("htmlmd: converter panicked: %v", r)
		}
	}()

	// The parser assumes UTF-8; invalid bytes would pass through to the output.
	src = strings.ToValidUTF8(src, "\uFFFD")

	doc, err := parse(src)
	if err != nil {
		return textOnly(src), nil
	}

	page := prepare(doc, opts)
	var md []byte
	if page.root != nil {
		convOpts := []converter.ConvertOptionFunc{}
		if page.baseURL != "" {
			convOpts = append(convOpts, converter.WithDomain(page.baseURL))
		}
		md, err = converterOnce().ConvertNode(page.root, convOpts...)
		if err != nil {
			return Result{}, fmt.Errorf("htmlmd: convert: %w", err)
		}
	}
	return Result{Markdown: clean(string(md)), Title: page.title}, nil
}

// parse flattens and parses src, retrying with a lower cap and no formatting elements when the
// parser still finds it too deep.
func parse(src string) (*html.Node, error) {
	doc, err := html.Parse(strings.NewReader(flatten(src, flattenOptions{maxDepth: maxDepth})))
	if err == nil {
		return doc, nil
	}
	doc, err2 := html.Parse(strings.NewReader(flatten(src, flattenOptions{maxDepth: maxDepthRetry, dropFormatting: true})))
	if err2 == nil {
		return doc, nil
	}
	return nil, errors.Join(err, err2)
}

// clean makes the output valid UTF-8 (the converter works on bytes and might, in principle,
// split a character) and trims it.
func clean(md string) string {
	if !utf8.ValidString(md) {
		md = strings.ToValidUTF8(md, "\uFFFD")
	}
	return strings.TrimSpace(md)
}

// textOnly is the last resort for a page the parser rejects: its text, a paragraph break at
// every block-level tag, with the contents of scripts, styles and the like left out.
func textOnly(src string) Result {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	var title string
	skip := atom.Atom(0)
	brk := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return Result{Markdown: clean(b.String()), Title: title}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case skip != 0:
				if a == skip {
					skip = 0
				}
			case a == atom.Script || a == atom.Style || a == atom.Noscript || a == atom.Template ||
				a == atom.Textarea || a == atom.Title || a == atom.Noembed || a == atom.Noframes:
				skip = a
			}
			if isSpecial(a) {
				brk = true
			}
		case html.TextToken:
			text := collapseSpace(string(z.Text()))
			if skip == atom.Title && title == "" {
				title = text
			}
			if skip != 0 || text == "" {
				continue
			}
			switch {
			case b.Len() == 0:
			case brk:
				b.WriteString("\n\n")
			default:
				b.WriteString(" ")
			}
			brk = false
			b.WriteString(escapeText(text))
		}
	}
}

// escapeText keeps plain text from reading as Markdown: a leading "#", "-", "1." or ">" would
// start a heading, list or quote.
func escapeText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", `\<`)
	s = r.Replace(s)
	if s != "" && (strings.ContainsRune("#->+|=~", rune(s[0])) || s[0] >= '0' && s[0] <= '9') {
		s = `\` + s
	}
	return s
}

func collapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
