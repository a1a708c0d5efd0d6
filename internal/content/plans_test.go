package content_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

// TestGroupStatementsFindDocumentsByKey: the statements a worker runs for every group of
// documents look each document up by its key, whatever the tables held when the plan was made.
// A connection prepares each statement once and Postgres soon settles on a generic plan, which it
// keeps until the tables' statistics change. Made while the tables were small (a new source, the
// start of a large intake), a join of the group's ids with documents and document_index_state was
// a hash join over a sequential scan of each; kept while the tables grew, every group read both
// whole (the end-to-end benchmark: the index-state write and the group read took 4x and 3x as
// long at 10,000 documents as at 1,000). Made while the tables were analyzed empty (a source just
// deleted), even a lookup by key (LATERAL ... LIMIT 1) was a scan of the table; the statements
// now run after keyed_reads.sql, which rules scans out.
func TestGroupStatementsFindDocumentsByKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 90) // ~5 KB: stored out of line
	add := func(call, n int) {
		docs := make([]content.DocumentInput, n)
		for i := range docs {
			docs[i] = content.DocumentInput{URI: fmt.Sprintf("doc-%d-%d", call, i), Content: fmt.Sprintf("%d %d %s", call, i, body)}
		}
		var states []content.IndexState
		for _, u := range b.upsert(t, src.ID, docs...) {
			states = append(states, content.IndexState{DocumentID: u.Document.ID, ContentHash: u.Document.ContentHash, Fingerprint: "f", ChunkCount: 3})
		}
		_, _, err := b.store.PutIndexStates(b.ctx, states, uuid.Nil)
		require.NoError(t, err)
	}

	conn, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(b.ctx, "SET plan_cache_mode = force_generic_plan")
	require.NoError(t, err)
	args := map[string]string{ // any values: a generic plan does not look at them
		"get_documents_with_states": "('{}', 0)",
		"put_index_states":          "('{}', '{}', '{}', '{}', NULL, false)",
	}
	for name, q := range content.GroupQueries {
		_, err := conn.Exec(b.ctx, "PREPARE "+name+" AS "+q)
		require.NoError(t, err, name)
	}
	// As the store sends them: each after keyed_reads.sql, in one transaction.
	check := func(when string) {
		for name := range content.GroupQueries {
			tx, err := conn.Begin(b.ctx)
			require.NoError(t, err)
			_, err = tx.Exec(b.ctx, content.KeyedReads)
			require.NoError(t, err)
			reads, plan := dbtest.PlanReads(t, tx, "EXECUTE "+name+args[name])
			require.NoError(t, tx.Rollback(b.ctx))
			for _, r := range reads {
				if strings.HasPrefix(r, "seq scan of ") {
					t.Errorf("%s, %s: the generic plan makes a %s:\n%s", name, when, r, plan)
				}
			}
		}
	}
	// The tables analyzed empty, as after a source's deletion once autovacuum has been by.
	_, err = conn.Exec(b.ctx, "VACUUM ANALYZE documents, document_index_state")
	require.NoError(t, err)
	check("empty tables, analyzed")
	add(0, 20)
	check("20 documents, the plan made with the tables empty")
	for call := 1; call <= 4; call++ {
		add(call, 500)
	}
	check("2,020 documents, the plan made with the tables empty")
}
