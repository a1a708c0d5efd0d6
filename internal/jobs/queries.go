package jobs

import (
	"embed"
	"fmt"
	"strings"
)

// The store's SQL lives in sql/, one query per file, named for the Store method that runs it.
// Queries use pgx named arguments (@name).
//
//go:embed sql/*.sql
var sqlFiles embed.FS

// queries holds the text of every file in sql/, loaded once; a missing file panics at start-up
// (and so in every test) rather than on first use.
var queries = struct {
	jobInsert, jobGet, jobGetForUpdate, jobList, jobSetStatus, jobSetQueueMessageID string
	jobDocumentsInsert, jobDocumentsList                                            string
	jobListTimedOut, jobListUnfinished, jobSetCrawlProgress, jobListStaleCrawls     string
	batchInsert, batchGet, batchList, batchMarkEnqueued, batchRenew                 string
	batchOpenCount, batchReleaseExpired, batchListQueued, batchRelease              string
	jobGetByExternalID, batchBacklog, jobCountActiveCrawls                          string
}{
	batchBacklog:         mustQuery("batch_backlog"),
	jobCountActiveCrawls: mustQuery("job_count_active_crawls"),
	jobGetByExternalID:   mustQuery("job_get_by_external_id"),
	batchRelease:         mustQuery("batch_release"),
	jobSetCrawlProgress:  mustQuery("job_set_crawl_progress"),
	jobListStaleCrawls:   mustQuery("job_list_stale_crawls"),
	jobListTimedOut:      mustQuery("job_list_timed_out"),
	jobListUnfinished:    mustQuery("job_list_unfinished"),
	batchInsert:          mustQuery("batch_insert"),
	batchGet:             mustQuery("batch_get"),
	batchList:            mustQuery("batch_list"),
	batchMarkEnqueued:    mustQuery("batch_mark_enqueued"),
	batchRenew:           mustQuery("batch_renew"),
	batchOpenCount:       mustQuery("batch_open_count"),
	batchReleaseExpired:  mustQuery("batch_release_expired"),
	batchListQueued:      mustQuery("batch_list_queued"),
	jobInsert:            mustQuery("job_insert"),
	jobGet:               mustQuery("job_get"),
	jobGetForUpdate:      mustQuery("job_get_for_update"),
	jobList:              mustQuery("job_list"),
	jobSetStatus:         mustQuery("job_set_status"),
	jobSetQueueMessageID: mustQuery("job_set_queue_message_id"),
	jobDocumentsInsert:   mustQuery("job_documents_insert"),
	jobDocumentsList:     mustQuery("job_documents_list"),
}

func mustQuery(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name + ".sql")
	if err != nil {
		panic(fmt.Sprintf("jobs: missing query %s: %v", name, err))
	}
	q := strings.TrimSpace(stripComments(string(b)))
	if q == "" {
		panic(fmt.Sprintf("jobs: empty query %s", name))
	}
	return q
}

// stripComments drops whole-line "--" comments. pgx rewrites named arguments (@name) with a
// lexer that does not know SQL comments, so an apostrophe in a comment ("the job's") would be
// taken for the start of a string literal and hide the arguments after it.
func stripComments(sql string) string {
	lines := strings.Split(sql, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
