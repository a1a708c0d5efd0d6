package htmlmd

import (
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// page is a parsed document made ready for the converter.
type page struct {
	root    *html.Node // what to convert: <main>, the <article> or <body>; nil when empty
	title   string
	baseURL string
}

// maxIndent caps nested lists and block quotes: each level indents every line inside it, so a
// deep nest multiplies the output size. Deeper levels are kept as plain blocks.
const maxIndent = 8

// prepare picks the title and the content root and rewrites the tree for the converter. The
// tree's depth is bounded by the parser (512), so recursion here is bounded too.
func prepare(doc *html.Node, opts Options) page {
	p := page{baseURL: opts.BaseURL}
	p.title = collapseSpace(textOf(findFirst(doc, atom.Title)))
	if href := attr(findFirst(doc, atom.Base), "href"); href != "" {
		p.baseURL = resolve(opts.BaseURL, href)
	}

	removeNonContent(doc, opts.FullPage)
	body := findFirst(doc, atom.Body)
	if body == nil {
		body = doc
	}
	p.root = body
	if !opts.FullPage {
		if main := mainContent(body); main != nil {
			p.root = main
		}
	}
	if p.title == "" {
		h1 := findFirst(p.root, atom.H1)
		if h1 == nil {
			h1 = findFirst(doc, atom.H1)
		}
		p.title = collapseSpace(textOf(h1))
	}
	rewrite(p.root, 0)
	if strings.TrimSpace(textOf(p.root)) == "" {
		p.root = nil
	}
	return p
}

// resolve resolves ref against base; on any parse failure it returns what it can.
func resolve(base, ref string) string {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return base
	}
	b, err := url.Parse(base)
	if err != nil || base == "" {
		return r.String()
	}
	return b.ResolveReference(r).String()
}

// removeNonContent drops what is never content (scripts, styles, embedded objects, hidden
// elements) and, unless fullPage, the page chrome.
func removeNonContent(n *html.Node, fullPage bool) {
	var next *html.Node
	for c := n.FirstChild; c != nil; c = next {
		next = c.NextSibling
		if c.Type == html.CommentNode {
			n.RemoveChild(c)
			continue
		}
		if c.Type != html.ElementNode {
			continue
		}
		if isNonContent(c) || (!fullPage && isChrome(c)) {
			n.RemoveChild(c)
			continue
		}
		removeNonContent(c, fullPage)
	}
}

func isNonContent(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Iframe,
		atom.Object, atom.Embed, atom.Canvas, atom.Frameset, atom.Noembed, atom.Noframes,
		atom.Audio, atom.Video, atom.Button, atom.Select, atom.Textarea, atom.Input,
		atom.Dialog, atom.Head:
		return true
	}
	if _, hidden := attrOK(n, "hidden"); hidden {
		return true
	}
	if strings.EqualFold(attr(n, "aria-hidden"), "true") {
		return true
	}
	style := strings.ToLower(attr(n, "style"))
	return style != "" && hiddenStyle.MatchString(style)
}

var hiddenStyle = regexp.MustCompile(`(^|;)\s*(display\s*:\s*none|visibility\s*:\s*hidden)\s*(;|!|$)`)

// isChrome: navigation, site header and footer, sidebars, forms.
func isChrome(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Nav, atom.Aside:
		return true
	case atom.Header, atom.Footer:
		// Only the page's own header and footer: inside an article or section they hold
		// that part's heading, byline or notes (the HTML spec draws the same line).
		return !insideSection(n)
	case atom.Form:
		// Some frameworks (ASP.NET Web Forms) wrap the whole page in one form; a form
		// holding the page's heading or main content is that wrapper, not a form.
		return findFirst(n, atom.Main) == nil && findFirst(n, atom.Article) == nil && findFirst(n, atom.H1) == nil
	}
	switch strings.ToLower(strings.TrimSpace(attr(n, "role"))) {
	case "navigation", "complementary", "search", "menu", "menubar", "toolbar", "dialog":
		return true
	case "banner", "contentinfo":
		return !insideSection(n)
	}
	return false
}

func insideSection(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		switch p.DataAtom {
		case atom.Article, atom.Section, atom.Main, atom.Aside, atom.Nav:
			return true
		}
	}
	return false
}

// mainContent returns the first <main> (or role="main") with text, else the only outermost
// <article> with text, else nil (use the whole body). Several articles side by side are a
// listing page, where every one of them is content.
func mainContent(body *html.Node) *html.Node {
	var mains, articles []*html.Node
	var walk func(n *html.Node, inArticle bool)
	walk = func(n *html.Node, inArticle bool) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			isArticle := c.DataAtom == atom.Article
			if c.DataAtom == atom.Main || strings.EqualFold(strings.TrimSpace(attr(c, "role")), "main") {
				mains = append(mains, c)
			}
			if isArticle && !inArticle {
				articles = append(articles, c)
			}
			walk(c, inArticle || isArticle)
		}
	}
	walk(body, false)
	for _, m := range mains {
		if hasText(m) {
			return m
		}
	}
	var withText []*html.Node
	for _, a := range articles {
		if hasText(a) {
			withText = append(withText, a)
		}
	}
	if len(withText) == 1 {
		return withText[0]
	}
	return nil
}

// rewrite adjusts the content for the converter: images become their alt text, links that
// lead nowhere become text, code blocks get a clean language, and lists and quotes nested
// beyond maxIndent stop indenting.
func rewrite(n *html.Node, indent int) {
	var next *html.Node
	for c := n.FirstChild; c != nil; c = next {
		next = c.NextSibling
		if c.Type != html.ElementNode {
			continue
		}
		childIndent := indent
		switch c.DataAtom {
		case atom.Img:
			// The alt text is what the image says; its address is noise in a chunk.
			if alt := collapseSpace(attr(c, "alt")); alt != "" {
				n.InsertBefore(&html.Node{Type: html.TextNode, Data: alt}, c)
			}
			n.RemoveChild(c)
			continue
		case atom.A:
			if !usefulHref(attr(c, "href")) {
				// A span, not an a without href: the converter would resolve the empty
				// href to the base URL.
				c.DataAtom, c.Data, c.Attr = atom.Span, "span", nil
			}
		case atom.Pre:
			setCodeLanguage(c)
		case atom.Ul, atom.Ol, atom.Dl, atom.Menu, atom.Dir, atom.Blockquote:
			childIndent++
			if childIndent > maxIndent {
				toDiv(c)
			}
		case atom.Li, atom.Dd, atom.Dt:
			if indent > maxIndent {
				toDiv(c)
			}
		}
		rewrite(c, childIndent)
	}
}

func toDiv(n *html.Node) {
	n.DataAtom, n.Data = atom.Div, "div"
}

// usefulHref reports whether a link should stay a link: in-page anchors and script, data and
// empty links would only add noise.
func usefulHref(href string) bool {
	href = strings.TrimSpace(href)
	if href == "" || strings.HasPrefix(href, "#") {
		return false
	}
	lower := strings.ToLower(href)
	for _, scheme := range []string{"javascript:", "data:", "vbscript:"} {
		if strings.HasPrefix(lower, scheme) {
			return false
		}
	}
	return true
}

// codeLanguage matches what may stand in a fence's info string.
var codeLanguage = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+#.-]{0,31}$`)

// setCodeLanguage finds the language of a code block wherever sites put it (class
// "language-x" or "lang-x" on pre or code, data-lang, or "highlight-x" / "language-x" on the
// wrapping element), and leaves exactly one clean "language-x" class on the pre, which is
// where the converter looks first. Anything else in those classes could break the fence.
func setCodeLanguage(pre *html.Node) {
	var code *html.Node
	for c := pre.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.DataAtom == atom.Code {
			code = c
			break
		}
	}
	lang := ""
	for _, n := range []*html.Node{pre, code, pre.Parent} {
		if n == nil || lang != "" {
			continue
		}
		for _, key := range []string{"data-lang", "data-language"} {
			if v := strings.TrimSpace(attr(n, key)); lang == "" && codeLanguage.MatchString(v) {
				lang = v
			}
		}
		for _, class := range strings.Fields(attr(n, "class")) {
			for _, prefix := range []string{"language-", "lang-", "highlight-source-", "highlight-"} {
				if v, ok := strings.CutPrefix(class, prefix); ok && lang == "" && codeLanguage.MatchString(v) {
					lang = v
				}
			}
		}
	}
	removeAttr(pre, "class")
	if code != nil {
		removeAttr(code, "class")
	}
	if lang != "" {
		pre.Attr = append(pre.Attr, html.Attribute{Key: "class", Val: "language-" + strings.ToLower(lang)})
	}
}

// findFirst returns the first element with atom a in document order, or nil.
func findFirst(n *html.Node, a atom.Atom) *html.Node {
	if n == nil {
		return nil
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if c.DataAtom == a && c.Namespace == "" {
			return c
		}
		if f := findFirst(c, a); f != nil {
			return f
		}
	}
	return nil
}

func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch c.Type {
			case html.TextNode:
				b.WriteString(c.Data)
				b.WriteByte(' ')
			case html.ElementNode:
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

// hasText reports whether n holds any non-space text, without building it.
func hasText(n *html.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			if strings.TrimSpace(c.Data) != "" {
				return true
			}
		case html.ElementNode:
			if hasText(c) {
				return true
			}
		}
	}
	return false
}

func attrOK(n *html.Node, key string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func attr(n *html.Node, key string) string {
	v, _ := attrOK(n, key)
	return v
}

func removeAttr(n *html.Node, key string) {
	out := n.Attr[:0]
	for _, a := range n.Attr {
		if a.Namespace != "" || a.Key != key {
			out = append(out, a)
		}
	}
	n.Attr = out
}
