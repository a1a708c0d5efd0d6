package content

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// The queries, one per file in sql/. A missing file panics at start-up, so any test catches it.
var (
	qCreateSource       = mustQuery("create_source")
	qGetSource          = mustQuery("get_source")
	qListSources        = mustQuery("list_sources")
	qDeleteSource       = mustQuery("delete_source")
	qUpdateSourceStatus = mustQuery("update_source_status")
	qGetSourceStatus    = mustQuery("get_source_status")
	qLockSource         = mustQuery("lock_source")
	qSourceExists       = mustQuery("source_exists")
	qUpsertDocuments    = mustQuery("upsert_documents")
	qGetDocumentsByURIs = mustQuery("get_documents_by_uris")
	qGetDocument        = mustQuery("get_document")
	qGetDocumentsByIDs  = mustQuery("get_documents_by_ids")
	qListDocuments      = mustQuery("list_documents")
)

// sourceStatsMarker in a query is replaced by sql/source_stats.sql: the joins that count a
// source's documents and chunks and find its last crawl, written once for every query that
// returns sources.
const sourceStatsMarker = "/*source_stats*/"

func mustQuery(name string) string {
	return strings.ReplaceAll(readQuery(name), sourceStatsMarker, readQuery("source_stats"))
}

func readQuery(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name + ".sql")
	if err != nil {
		panic(fmt.Sprintf("content: missing query %s: %v", name, err))
	}
	return string(b)
}
