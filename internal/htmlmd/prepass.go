package htmlmd

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// The parser (golang.org/x/net/html) gives up on a document whose open elements nest deeper
// than 512, and the whole page would be lost. flatten runs before it, on the token stream:
// it keeps a model of the parser's stack of open elements and drops the tags (never the text)
// that would open an element deeper than a cap, so a depth bomb costs one linear pass and the
// page still converts, flattened below the cap.
//
// The model follows the parsing rules that matter for depth (void elements, the implied end
// tags of li, dd, p, cells, rows and options, end-tag scope, end tags the parser ignores) and
// where it differs from the parser it overestimates the depth, which only drops tags early.
// The one place the parser nests deeper than the model is formatting elements (b, a, font,
// ...), which it reopens after misnested end tags; when that defeats the cap, Convert retries
// with a lower cap and without formatting elements, and as a last resort takes the text.

// flattenOptions tunes one flatten pass.
type flattenOptions struct {
	maxDepth       int  // open elements kept; deeper start tags are dropped
	dropFormatting bool // drop b, i, a, font, ... entirely (the retry after a parse failure)
}

// Limits on the model: searches down the stack stop after scanLimit entries so a stream of
// unmatched end tags stays linear, and past stackLimit entries only a count is kept.
const (
	scanLimit  = 128
	stackLimit = 1 << 16
)

type openElem struct {
	a       atom.Atom
	name    string // only when a == 0 (unknown or custom element)
	dropped bool   // its start tag was not emitted, so its end tag is not either
}

func (e openElem) is(a atom.Atom, name []byte) bool {
	return e.a == a && (a != 0 || e.name == string(name))
}

type flattener struct {
	opts     flattenOptions
	out      bytes.Buffer
	stack    []openElem
	overflow int // elements beyond stackLimit, all dropped
	foreign  int // svg and math elements open: self-closing tags there are void
	// skipText is set after dropping the start tag of a script, style or the like: the
	// tokenizer hands out its body as text, which must not become page text.
	skipText bool
}

// flatten returns src with the tags beyond the depth cap removed, comments dropped, and every
// text re-escaped, so no text (not even the body of a dropped <script>) can turn into markup.
func flatten(src string, opts flattenOptions) string {
	f := &flattener{opts: opts}
	f.out.Grow(len(src))
	z := html.NewTokenizer(strings.NewReader(src))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return f.out.String()
		case html.TextToken:
			if f.skipText {
				continue
			}
			// Escaped again: inside raw-text elements (script, style, xmp, or a dropped
			// start tag's body) the tokenizer hands out markup as text, and the parser may
			// not agree on which elements are raw (svg's <style> is not).
			f.out.WriteString(html.EscapeString(string(z.Text())))
		case html.CommentToken:
			// Dropped: the converter ignores them, and this saves it the work.
		case html.DoctypeToken:
			f.out.Write(z.Raw())
		case html.StartTagToken, html.SelfClosingTagToken:
			f.skipText = false
			f.start(z, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			f.skipText = false
			f.end(z)
		}
	}
}

func (f *flattener) start(z *html.Tokenizer, selfClosing bool) {
	nameBytes, _ := z.TagName()
	a := atom.Lookup(nameBytes)
	if f.opts.dropFormatting && isFormatting(a) {
		return
	}
	raw := z.Raw()
	if a == atom.Xmp || a == atom.Plaintext || a == atom.Listing {
		// Their text is re-escaped, which they would show literally; as pre it reads right.
		raw = []byte("<pre>")
	}
	if isVoid(a) || (selfClosing && f.foreign > 0) {
		f.out.Write(raw)
		return
	}
	f.closeImplied(a)

	if len(f.stack) >= stackLimit {
		f.overflow++
		return
	}
	e := openElem{a: a}
	if a == 0 {
		e.name = string(nameBytes)
	}
	if len(f.stack) >= f.opts.maxDepth {
		e.dropped = true
		f.skipText = isRawNonContent(a)
	} else {
		f.out.Write(raw)
	}
	if a == atom.Svg || a == atom.Math {
		f.foreign++
	}
	f.stack = append(f.stack, e)
}

// popTo removes the entries from i to the top.
func (f *flattener) popTo(i int) {
	for _, e := range f.stack[i:] {
		if e.a == atom.Svg || e.a == atom.Math {
			f.foreign--
		}
	}
	f.stack = f.stack[:i]
}

func (f *flattener) end(z *html.Tokenizer) {
	nameBytes, _ := z.TagName()
	a := atom.Lookup(nameBytes)
	raw := z.Raw()
	switch {
	case f.opts.dropFormatting && isFormatting(a):
		return
	case a == atom.Html || a == atom.Body || a == atom.Head:
		// The parser keeps the elements open past </body>; so does the model, and the tag
		// says nothing the converter needs.
		return
	case a == atom.Xmp || a == atom.Plaintext || a == atom.Listing:
		raw = []byte("</pre>")
	}
	if f.overflow > 0 {
		// Past the stack limit only a count is kept; the end tag closes one of those.
		f.overflow--
		return
	}

	i := -1
	switch {
	case isSpecial(a):
		// Closes the element if it is in scope, else the parser ignores it.
		i = f.find(a, nameBytes, isScopeBoundary)
	case isFormatting(a):
		// With a special element above it, the adoption agency moves nodes around but
		// leaves the stack as deep as it was: keep the model as it is.
		i = f.find(a, nameBytes, isSpecial)
	default:
		// Any other end tag closes up to its element unless a special element comes
		// first, in which case the parser ignores it.
		i = f.find(a, nameBytes, isSpecial)
	}
	if i < 0 {
		// Unknown to the model: pass it on and let the parser decide; an end tag never
		// makes anything deeper.
		f.out.Write(raw)
		return
	}
	dropped := f.stack[i].dropped
	f.popTo(i)
	if !dropped {
		f.out.Write(raw)
	}
}

// find returns the index of the nearest open element named a (or name, for unknown elements),
// or -1 when an element for which stop is true comes first.
func (f *flattener) find(a atom.Atom, name []byte, stop func(atom.Atom) bool) int {
	for i, n := len(f.stack)-1, 0; i >= 0 && n < scanLimit; i, n = i-1, n+1 {
		e := f.stack[i]
		if e.is(a, name) {
			return i
		}
		if stop(e.a) {
			return -1
		}
	}
	return -1
}

// findAny is find for a set of names.
func (f *flattener) findAny(match, stop func(atom.Atom) bool) int {
	for i, n := len(f.stack)-1, 0; i >= 0 && n < scanLimit; i, n = i-1, n+1 {
		if match(f.stack[i].a) {
			return i
		}
		if stop(f.stack[i].a) {
			return -1
		}
	}
	return -1
}

// closeImplied applies the implied end tags a start tag a causes, as the parser does.
func (f *flattener) closeImplied(a atom.Atom) {
	top := func() atom.Atom {
		if len(f.stack) == 0 {
			return 0
		}
		return f.stack[len(f.stack)-1].a
	}
	popIf := func(match, stop func(atom.Atom) bool) {
		if i := f.findAny(match, stop); i >= 0 {
			f.popTo(i)
		}
	}
	switch a {
	case atom.Li:
		popIf(func(x atom.Atom) bool { return x == atom.Li }, stopsListItem)
	case atom.Dd, atom.Dt:
		popIf(func(x atom.Atom) bool { return x == atom.Dd || x == atom.Dt }, stopsListItem)
	case atom.Td, atom.Th:
		popIf(func(x atom.Atom) bool { return x == atom.Td || x == atom.Th }, isTableBoundary(atom.Tr))
	case atom.Tr:
		popIf(func(x atom.Atom) bool { return x == atom.Tr }, isTableBoundary(atom.Tbody, atom.Thead, atom.Tfoot))
	case atom.Tbody, atom.Thead, atom.Tfoot:
		popIf(func(x atom.Atom) bool { return x == atom.Tbody || x == atom.Thead || x == atom.Tfoot }, isTableBoundary())
	case atom.Option:
		if top() == atom.Option {
			f.popTo(len(f.stack) - 1)
		}
	case atom.Optgroup:
		if top() == atom.Option {
			f.popTo(len(f.stack) - 1)
		}
		if top() == atom.Optgroup {
			f.popTo(len(f.stack) - 1)
		}
	}
	if closesP(a) {
		popIf(func(x atom.Atom) bool { return x == atom.P }, isButtonScopeBoundary)
	}
	if isHeading(a) && isHeading(top()) {
		f.popTo(len(f.stack) - 1)
	}
}

// stopsListItem: a new li (dd, dt) closes an open one across anything but a special element
// other than address, div and p.
func stopsListItem(x atom.Atom) bool {
	return isSpecial(x) && x != atom.Address && x != atom.Div && x != atom.P
}

func isTableBoundary(extra ...atom.Atom) func(atom.Atom) bool {
	return func(x atom.Atom) bool {
		if x == atom.Table || x == atom.Html || x == atom.Template {
			return true
		}
		for _, e := range extra {
			if x == e {
				return true
			}
		}
		return false
	}
}

// isScopeBoundary: the elements bounding the parser's "has an element in scope".
func isScopeBoundary(a atom.Atom) bool {
	switch a {
	case atom.Applet, atom.Caption, atom.Html, atom.Table, atom.Td, atom.Th, atom.Marquee,
		atom.Object, atom.Template, atom.Mi, atom.Mo, atom.Mn, atom.Ms, atom.Mtext,
		atom.AnnotationXml, atom.ForeignObject, atom.Desc, atom.Title:
		return true
	}
	return false
}

func isButtonScopeBoundary(a atom.Atom) bool { return a == atom.Button || isScopeBoundary(a) }

// isSpecial: the parser's "special" category.
func isSpecial(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Applet, atom.Area, atom.Article, atom.Aside, atom.Base,
		atom.Basefont, atom.Bgsound, atom.Blockquote, atom.Body, atom.Br, atom.Button,
		atom.Caption, atom.Center, atom.Col, atom.Colgroup, atom.Dd, atom.Details, atom.Dir,
		atom.Div, atom.Dl, atom.Dt, atom.Embed, atom.Fieldset, atom.Figcaption, atom.Figure,
		atom.Footer, atom.Form, atom.Frame, atom.Frameset, atom.H1, atom.H2, atom.H3, atom.H4,
		atom.H5, atom.H6, atom.Head, atom.Header, atom.Hgroup, atom.Hr, atom.Html, atom.Iframe,
		atom.Img, atom.Input, atom.Keygen, atom.Li, atom.Link, atom.Listing, atom.Main,
		atom.Marquee, atom.Menu, atom.Meta, atom.Nav, atom.Noembed, atom.Noframes,
		atom.Noscript, atom.Object, atom.Ol, atom.P, atom.Param, atom.Plaintext, atom.Pre,
		atom.Script, atom.Search, atom.Section, atom.Select, atom.Source, atom.Style,
		atom.Summary, atom.Table, atom.Tbody, atom.Td, atom.Template, atom.Textarea,
		atom.Tfoot, atom.Th, atom.Thead, atom.Title, atom.Tr, atom.Track, atom.Ul, atom.Wbr,
		atom.Xmp, atom.Mi, atom.Mo, atom.Mn, atom.Ms, atom.Mtext, atom.AnnotationXml,
		atom.ForeignObject, atom.Desc:
		return true
	}
	return false
}

// isRawNonContent: elements whose body the tokenizer reads as raw text and that hold no page
// text.
func isRawNonContent(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Iframe, atom.Noembed, atom.Noframes, atom.Noscript:
		return true
	}
	return false
}

func isVoid(a atom.Atom) bool {
	switch a {
	case atom.Area, atom.Base, atom.Br, atom.Col, atom.Embed, atom.Hr, atom.Img, atom.Input,
		atom.Keygen, atom.Link, atom.Meta, atom.Param, atom.Source, atom.Track, atom.Wbr,
		atom.Basefont, atom.Bgsound, atom.Frame, atom.Image:
		return true
	}
	return false
}

// isFormatting: the parser's "formatting elements", which it reopens after misnested end
// tags, so they can nest deeper in its tree than in the token stream.
func isFormatting(a atom.Atom) bool {
	switch a {
	case atom.A, atom.B, atom.Big, atom.Code, atom.Em, atom.Font, atom.I, atom.Nobr, atom.S,
		atom.Small, atom.Strike, atom.Strong, atom.Tt, atom.U:
		return true
	}
	return false
}

func isHeading(a atom.Atom) bool {
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

// closesP: start tags that close an open p in button scope.
func closesP(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Center, atom.Details,
		atom.Dialog, atom.Dir, atom.Div, atom.Dl, atom.Fieldset, atom.Figcaption, atom.Figure,
		atom.Footer, atom.Form, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Header, atom.Hgroup, atom.Hr, atom.Li, atom.Listing, atom.Main, atom.Menu,
		atom.Nav, atom.Ol, atom.P, atom.Pre, atom.Search, atom.Section, atom.Summary,
		atom.Table, atom.Ul, atom.Dd, atom.Dt, atom.Xmp, atom.Plaintext:
		return true
	}
	return false
}
