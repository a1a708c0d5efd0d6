package milvus

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Milvus boolean expressions. Only these forms are built, and the fake (milvusfake) understands
// exactly these: field == "v", field in ["a", "b"], field >= n, joined by "and".

// quote makes s a Milvus string literal. Milvus reads a double-quoted literal with Go's escape
// rules (its parser ends in strconv.Unquote), so strconv.Quote escapes quotes, backslashes and
// control characters in a way it reads back exactly.
func quote(s string) string { return strconv.Quote(s) }

func eqExpr(field, value string) string { return field + " == " + quote(value) }

func inExpr(field string, values []string) string {
	var b strings.Builder
	b.WriteString(field)
	b.WriteString(" in [")
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(v))
	}
	b.WriteString("]")
	return b.String()
}

// documentExpr selects the document's chunks from fromIndex on.
func documentExpr(documentID string, fromIndex int) string {
	e := eqExpr(fieldDocumentID, documentID)
	if fromIndex > 0 {
		e += " and " + fieldChunkIndex + " >= " + strconv.Itoa(fromIndex)
	}
	return e
}

// filterExpr is the expression of a search or count filter; "" matches everything.
func filterExpr(f vector.Filter) string {
	var parts []string
	if len(f.SourceIDs) > 0 {
		parts = append(parts, inExpr(fieldSourceID, f.SourceIDs))
	}
	if len(f.DocumentIDs) > 0 {
		parts = append(parts, inExpr(fieldDocumentID, f.DocumentIDs))
	}
	return strings.Join(parts, " and ")
}

// truncateUTF8 cuts valid UTF-8 s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
