package htmlmd

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

func TestTextOnly(t *testing.T) {
	t.Parallel()
	res := textOnly(`<html><head><title>The  title</title><style>p{}</style></head><body>
<h1># Heading</h1><p>First <b>bold</b> para.</p><script>var x = "<p>";</script>
<div>- not a list *nor emphasis*</div><p>1. not a number</p></body></html>`)
	require.Equal(t, "The title", res.Title)
	require.Equal(t, "\\# Heading\n\nFirst bold para.\n\n\\- not a list \\*nor emphasis\\*\n\n\\1. not a number", res.Markdown)
}

func TestFlattenCapsDepth(t *testing.T) {
	t.Parallel()
	src := strings.Repeat("<div>", 1000) + "deep" + strings.Repeat("</div>", 1000) + "<p>after</p>"
	out := flatten(src, flattenOptions{maxDepth: 10})
	require.Equal(t, strings.Repeat("<div>", 10)+"deep"+strings.Repeat("</div>", 10)+"<p>after</p>", out)

	doc, err := html.Parse(strings.NewReader(out))
	require.NoError(t, err)
	require.Contains(t, textOf(doc), "deep")
}

func TestFlattenKeepsOrdinaryPages(t *testing.T) {
	t.Parallel()
	// Implied end tags keep long flat structures shallow in the model, so nothing is lost.
	for _, src := range []string{
		"<ul>" + strings.Repeat("<li>item", 1000) + "</ul>",
		strings.Repeat("<p>para", 1000),
		"<table>" + strings.Repeat("<tr><td>a<td>b", 1000) + "</table>",
		"<dl>" + strings.Repeat("<dt>t<dd>d", 1000) + "</dl>",
		"<select>" + strings.Repeat("<option>o", 1000) + "</select>",
		strings.Repeat("<h1>a<h2>b", 1000),
		strings.Repeat("<p><span>a<div>b</div></span>", 1000),
	} {
		require.Equal(t, src, flatten(src, flattenOptions{maxDepth: 16}), src[:20])
	}
}

func TestFlattenEscapesRawText(t *testing.T) {
	t.Parallel()
	// Markup in raw text stays text, whatever the parser later thinks is raw.
	out := flatten("<svg><style><div>x</div></style></svg>", flattenOptions{maxDepth: 16})
	require.Equal(t, "<svg><style>&lt;div&gt;x&lt;/div&gt;</style></svg>", out)
	// The body of a script dropped at the cap disappears with it.
	out = flatten("<div><script>a<b</script>c</div>", flattenOptions{maxDepth: 1})
	require.Equal(t, "<div>c</div>", out)
	// Comments go; xmp becomes pre.
	out = flatten("<!-- x --><xmp><b></xmp>", flattenOptions{maxDepth: 16})
	require.Equal(t, "<pre>&lt;b&gt;</pre>", out)
}
