package htmlmd_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/htmlmd"
)

func convert(t *testing.T, src string, opts htmlmd.Options) htmlmd.Result {
	t.Helper()
	res, err := htmlmd.Convert(src, opts)
	require.NoError(t, err)
	require.True(t, utf8.ValidString(res.Markdown), "markdown is not valid UTF-8")
	require.True(t, utf8.ValidString(res.Title), "title is not valid UTF-8")
	return res
}

// page wraps body content in a typical page with all the chrome around it.
func page(content string) string {
	return `<!doctype html><html><head><title>Install guide | Pipeline</title>
<style>body { color: red }</style><script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<header class="site"><a href="/">SITE-LOGO</a><nav><ul><li><a href="/docs">NAV-DOCS</a></li></ul></nav></header>
<aside>ASIDE-RELATED</aside>
` + content + `
<form action="/search"><input name="q"><button>FORM-BUTTON</button>FORM-TEXT</form>
<noscript>NOSCRIPT-TEXT</noscript>
<iframe src="/ads">IFRAME-TEXT</iframe>
<svg><text>SVG-TEXT</text></svg>
<footer>FOOTER-COPYRIGHT</footer>
<script>document.write("SCRIPT-BODY")</script>
</body></html>`
}

var chrome = []string{
	"SCRIPT-TEXT", "SCRIPT-BODY", "color: red", "SITE-LOGO", "NAV-DOCS", "ASIDE-RELATED",
	"FORM-BUTTON", "FORM-TEXT", "NOSCRIPT-TEXT", "IFRAME-TEXT", "SVG-TEXT", "FOOTER-COPYRIGHT",
}

func TestConvertDropsChrome(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"no main":      `<div><h1>Install</h1><p>CONTENT-TEXT</p></div>`,
		"with main":    `<main><h1>Install</h1><p>CONTENT-TEXT</p></main>`,
		"with article": `<article><h1>Install</h1><p>CONTENT-TEXT</p></article>`,
	} {
		res := convert(t, page(content), htmlmd.Options{})
		require.Contains(t, res.Markdown, "# Install", name)
		require.Contains(t, res.Markdown, "CONTENT-TEXT", name)
		for _, c := range chrome {
			require.NotContains(t, res.Markdown, c, name)
		}
	}
}

func TestConvertHiddenAndRoles(t *testing.T) {
	t.Parallel()
	res := convert(t, `<body>
<p>VISIBLE</p>
<p hidden>HIDDEN-ATTR</p>
<div aria-hidden="true">ARIA-HIDDEN</div>
<div style="color: blue; display: none">STYLE-HIDDEN</div>
<div style="display:block">STYLE-SHOWN</div>
<div role="navigation">ROLE-NAV</div>
<div role="banner">ROLE-BANNER</div>
<div role="dialog">COOKIE-BANNER</div>
<div role="alert">ALERT-NOTE</div>
</body>`, htmlmd.Options{})
	for _, want := range []string{"VISIBLE", "STYLE-SHOWN", "ALERT-NOTE"} {
		require.Contains(t, res.Markdown, want)
	}
	for _, gone := range []string{"HIDDEN-ATTR", "ARIA-HIDDEN", "STYLE-HIDDEN", "ROLE-NAV", "ROLE-BANNER", "COOKIE-BANNER"} {
		require.NotContains(t, res.Markdown, gone)
	}
}

func TestConvertMainContent(t *testing.T) {
	t.Parallel()

	// main wins over the rest of the body.
	res := convert(t, `<body><div>OUTSIDE</div><main><p>INSIDE-MAIN</p></main></body>`, htmlmd.Options{})
	require.Equal(t, "INSIDE-MAIN", res.Markdown)

	// role="main" counts as main.
	res = convert(t, `<body><div>OUTSIDE</div><div role="main"><p>INSIDE-MAIN</p></div></body>`, htmlmd.Options{})
	require.Equal(t, "INSIDE-MAIN", res.Markdown)

	// An empty main (a script-rendered app shell) does not hide the rest.
	res = convert(t, `<body><main> </main><div>SERVER-TEXT</div></body>`, htmlmd.Options{})
	require.Equal(t, "SERVER-TEXT", res.Markdown)

	// One article: just it; its own header and footer stay, with the comments nested in it.
	res = convert(t, `<body><div>OUTSIDE</div><article><header><h1>Post</h1><p>BYLINE</p></header>
<p>BODY</p><article><p>COMMENT</p></article><footer>ARTICLE-NOTE</footer></article></body>`, htmlmd.Options{})
	require.NotContains(t, res.Markdown, "OUTSIDE")
	for _, want := range []string{"# Post", "BYLINE", "BODY", "COMMENT", "ARTICLE-NOTE"} {
		require.Contains(t, res.Markdown, want)
	}
	require.Equal(t, "Post", res.Title)

	// Several articles side by side: a listing, all of it is content.
	res = convert(t, `<body><h1>Blog</h1><article><p>FIRST</p></article><article><p>SECOND</p></article></body>`, htmlmd.Options{})
	for _, want := range []string{"# Blog", "FIRST", "SECOND"} {
		require.Contains(t, res.Markdown, want)
	}

	// A form wrapping the whole page is not dropped as a form.
	res = convert(t, `<body><form id="aspnetForm"><h1>Page</h1><p>WRAPPED</p></form></body>`, htmlmd.Options{})
	require.Contains(t, res.Markdown, "WRAPPED")
}

func TestConvertFullPage(t *testing.T) {
	t.Parallel()
	res := convert(t, page(`<main><p>CONTENT-TEXT</p></main>`), htmlmd.Options{FullPage: true})
	for _, want := range []string{"CONTENT-TEXT", "NAV-DOCS", "ASIDE-RELATED", "FOOTER-COPYRIGHT"} {
		require.Contains(t, res.Markdown, want)
	}
	for _, gone := range []string{"SCRIPT-TEXT", "SCRIPT-BODY", "NOSCRIPT-TEXT", "SVG-TEXT"} {
		require.NotContains(t, res.Markdown, gone)
	}
}

func TestConvertStructure(t *testing.T) {
	t.Parallel()
	src := `<html><head><base href="/docs/"></head><body><main>
<h1>Title</h1>
<h2>Second</h2>
<h3>Third</h3>
<p>Text with <strong>bold</strong>, <em>italic</em>, <code>inline</code>, and a
<a href="guide.html">relative link</a>, an <a href="https://other.example/x?a=1">absolute one</a>,
an <a href="#top">anchor</a> and a <a href="javascript:alert(1)">script link</a>.</p>
<ul><li>apple</li><li>banana<ol><li>nested one</li><li>nested two</li></ol></li></ul>
<table>
<thead><tr><th>Name</th><th>Value</th></tr></thead>
<tbody><tr><td>alpha</td><td>1</td></tr><tr><td>beta</td><td>2</td></tr></tbody>
</table>
<pre><code class="hljs language-go">func main() {
	fmt.Println("&lt;hi&gt;")
}</code></pre>
<div class="highlight highlight-source-python"><pre><span>print</span>("x")</pre></div>
<pre data-lang="rust">fn main() {}</pre>
<pre class="language-a` + "```" + `b">weird()</pre>
<p><img src="diagram.png" alt="Architecture  diagram"> <img src="spacer.gif"></p>
<blockquote><p>Quoted words.</p></blockquote>
</main></body></html>`
	res := convert(t, src, htmlmd.Options{BaseURL: "https://example.com/en/start"})
	md := res.Markdown
	for _, want := range []string{
		"# Title\n", "## Second\n", "### Third\n",
		"**bold**", "*italic*", "`inline`",
		"[relative link](https://example.com/docs/guide.html)",
		"[absolute one](https://other.example/x?a=1)",
		" anchor ", "a script link.",
		"- apple\n", "- banana", "1. nested one", "2. nested two",
		"| Name  | Value |", "| alpha | 1     |", "| beta  | 2     |",
		"```go\nfunc main() {\n\tfmt.Println(\"<hi>\")\n}\n```",
		"```python\nprint(\"x\")\n```",
		"```rust\nfn main() {}\n```",
		"Architecture diagram",
		"> Quoted words.",
	} {
		require.Contains(t, md, want)
	}
	require.NotContains(t, md, "spacer")
	require.NotContains(t, md, "diagram.png")
	require.NotContains(t, md, "javascript")
	require.NotContains(t, md, "#top")
	// A language that could break the fence is dropped, the code kept.
	require.Contains(t, md, "```\nweird()\n```")
}

func TestConvertTitle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{`<title>  Page
		title </title><h1>Heading</h1>`, "Page title"},
		{`<h1>First <em>heading</em></h1><h1>Second</h1>`, "First heading"},
		{`<nav><h1>Site name</h1></nav><main><h1>Article</h1></main>`, "Article"},
		{`<svg><title>Icon</title></svg><p>no heading</p>`, ""},
		{`<p>nothing</p>`, ""},
		{``, ""},
	} {
		require.Equal(t, tc.want, convert(t, tc.src, htmlmd.Options{}).Title, tc.src)
	}
}

func TestConvertEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "   ", "<html></html>", "<script>x()</script>", "<!-- only a comment -->"} {
		res := convert(t, src, htmlmd.Options{})
		require.Empty(t, res.Markdown, src)
	}
	// Plain text is a page too.
	require.Equal(t, "just text", convert(t, "just text", htmlmd.Options{}).Markdown)
}

func TestConvertInvalidUTF8(t *testing.T) {
	t.Parallel()
	src := "<title>caf\xe9 \xff</title><p>na\xefve \xc3\x28 text \xed\xa0\x80 end</p><p>ok ü</p>"
	res := convert(t, src, htmlmd.Options{})
	require.Contains(t, res.Markdown, "ok ü")
	require.Contains(t, res.Markdown, "end")
	require.Contains(t, res.Markdown, "\uFFFD")
	require.Contains(t, res.Title, "caf")
}

// TestConvertHostile feeds inputs built to exhaust the stack, the parser's depth limit or
// the output size. Each must finish quickly, without error, keeping its text.
func TestConvertHostile(t *testing.T) {
	t.Parallel()
	distinctFormatting := func() string {
		var b strings.Builder
		for i := range 3000 {
			fmt.Fprintf(&b, "<p><b id=%d>x</p>", i)
		}
		return b.String()
	}
	for name, tc := range map[string]struct {
		src  string
		want string
	}{
		"100k nested divs":         {strings.Repeat("<div>", 100_000) + "DEEP" + strings.Repeat("</div>", 100_000), "DEEP"},
		"100k unclosed divs":       {strings.Repeat("<div>x", 100_000) + "LAST", "LAST"},
		"nested spans and divs":    {strings.Repeat("<span><div>a</span>", 20_000) + "LAST", "LAST"},
		"misnested formatting":     {strings.Repeat("<b><div>a</b>", 20_000) + "LAST", "LAST"},
		"reopened formatting":      {strings.Repeat("<div><b x=1><i y=2><u>a</div>", 5_000) + "LAST", "LAST"},
		"distinct formatting":      {distinctFormatting() + "LAST", "LAST"},
		"tables in cells":          {strings.Repeat("<table><tr><td>", 3_000) + "LAST", "LAST"},
		"div table misnest":        {strings.Repeat("<div><table><tr><td>a</div>", 5_000) + "LAST", "LAST"},
		"list items and sections":  {"<ul>" + strings.Repeat("<li><section>a", 5_000) + "LAST", "LAST"},
		"svg style holding divs":   {"<p>LAST</p><svg><style>" + strings.Repeat("<div>", 5_000) + "</style></svg>", "LAST"},
		"script past the cap":      {strings.Repeat("<div>", 300) + "<script>" + strings.Repeat("<div>", 5_000) + "</script>LAST", "LAST"},
		"deep block quotes":        {strings.Repeat("<blockquote>", 1_000) + strings.Repeat("<p>a</p>", 5_000) + "LAST", "LAST"},
		"deep lists":               {strings.Repeat("<ul><li>", 1_000) + strings.Repeat("<p>a</p>", 5_000) + "LAST", "LAST"},
		"custom elements":          {strings.Repeat("<x-a><div></x-a>", 5_000) + "LAST", "LAST"},
		"body end tags":            {"<body>" + strings.Repeat(strings.Repeat("<div>", 200)+"</body>", 10) + "LAST", "LAST"},
		"foreign object":           {strings.Repeat("<svg><foreignObject><div>", 3_000) + "<p>LAST</p>", ""},
		"unterminated tag":         {"<p>LAST</p><div class=\"" + strings.Repeat("x", 100_000), "LAST"},
		"unterminated comment":     {"<p>LAST</p><!--" + strings.Repeat("x", 100_000), "LAST"},
		"many attributes":          {"<div " + strings.Repeat("a=b ", 50_000) + ">LAST</div>", "LAST"},
		"null bytes":               {"<p>LA\x00ST</p>", "LA"},
		"plaintext":                {"<plaintext><div>LAST", "<div>LAST"},
		"deep nested inline links": {strings.Repeat("<a href=x>", 5_000) + "LAST", "LAST"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := convert(t, tc.src, htmlmd.Options{})
			// A hang guard, not a timing assertion: quadratic work on these inputs takes minutes,
			// while a loaded CI machine under -race may take a few seconds.
			require.Less(t, time.Since(start), 60*time.Second)
			require.Contains(t, res.Markdown, tc.want)
			// Nesting must not multiply the output: indentation is capped.
			require.Less(t, len(res.Markdown), 4*len(tc.src)+1000)
		})
	}
}

func TestConvertConcurrent(t *testing.T) {
	t.Parallel()
	src := page(`<main><h1>Install</h1><p>CONTENT-TEXT</p><table><tr><td>a</td></tr></table></main>`)
	want := convert(t, src, htmlmd.Options{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := htmlmd.Convert(src, htmlmd.Options{})
				if err != nil || got != want {
					errc <- fmt.Errorf("got %+v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}
}

func FuzzConvert(f *testing.F) {
	for _, seed := range []string{
		"",
		page(`<main><h1>x</h1><p>y <a href="/z">z</a></p></main>`),
		"<table><tr><td>a<td>b<tr><td>c</table>",
		"<ul><li>a<li>b<ul><li>c</ul></ul>",
		"<pre><code class=\"language-go\">x := 1</code></pre>",
		"<b><div>a</b>b</div>",
		"<svg><style><div></style></svg>",
		"\xff\xfe<p>\xc3\x28</p>",
		strings.Repeat("<div>", 600) + "x",
	} {
		f.Add(seed, "")
	}
	f.Add("<a href=\"../x\">x</a>", "https://example.com/a/b")
	f.Fuzz(func(t *testing.T, src, baseURL string) {
		res, err := htmlmd.Convert(src, htmlmd.Options{BaseURL: baseURL})
		if err != nil {
			t.Fatalf("Convert(%q): %v", src, err)
		}
		if !utf8.ValidString(res.Markdown) || !utf8.ValidString(res.Title) {
			t.Fatalf("Convert(%q): invalid UTF-8 in %q / %q", src, res.Markdown, res.Title)
		}
		if res.Markdown != strings.TrimSpace(res.Markdown) {
			t.Fatalf("Convert(%q): untrimmed output %q", src, res.Markdown)
		}
	})
}
