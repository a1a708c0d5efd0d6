package milvus

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

func TestExpressions(t *testing.T) {
	t.Parallel()
	require.Equal(t, `document_id == "doc-1"`, documentExpr("doc-1", 0))
	require.Equal(t, `document_id == "doc-1"`, documentExpr("doc-1", -2))
	require.Equal(t, `document_id == "doc-1" and chunk_index >= 3`, documentExpr("doc-1", 3))
	require.Equal(t, `source_id == "a\"b\\c"`, eqExpr(fieldSourceID, `a"b\c`))
	require.Equal(t, `document_id == "line\nbreak"`, eqExpr(fieldDocumentID, "line\nbreak"))

	require.Equal(t, ``, filterExpr(vector.Filter{}))
	require.Equal(t, ``, filterExpr(vector.Filter{SourceIDs: []string{}, DocumentIDs: []string{}}))
	require.Equal(t, `source_id in ["a", "b"]`, filterExpr(vector.Filter{SourceIDs: []string{"a", "b"}}))
	require.Equal(t, `source_id in ["a"] and document_id in ["x\"]", "y"]`,
		filterExpr(vector.Filter{SourceIDs: []string{"a"}, DocumentIDs: []string{`x"]`, "y"}}))
}

// Milvus unquotes string literals with Go's rules: whatever quote makes must come back intact.
func TestQuoteRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", `"`, `\`, `\"`, "'", "a\x00b", "tab\there", "ünï ✓ 日本", "\u2028", "bad \xff utf8"} {
		q := quote(s)
		require.True(t, strings.HasPrefix(q, `"`) && strings.HasSuffix(q, `"`), q)
		back, err := strconv.Unquote(q)
		require.NoError(t, err, q)
		require.Equal(t, s, back)
	}
}

func TestTruncateUTF8(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", truncateUTF8("abc", 3))
	require.Equal(t, "ab", truncateUTF8("abc", 2))
	require.Equal(t, "a", truncateUTF8("aé", 2), "é is two bytes: cut before it")
	require.Equal(t, "aé", truncateUTF8("aéb", 3))
	require.Equal(t, "", truncateUTF8("日本", 2))
	require.Equal(t, "日", truncateUTF8("日本", 5))
	s := fitVarChar(strings.Repeat("€", 30000)) // 90000 bytes
	require.True(t, utf8.ValidString(s))
	require.Len(t, s, 65535)
	require.Equal(t, "a\uFFFDb", fitVarChar("a\xffb"))
}
