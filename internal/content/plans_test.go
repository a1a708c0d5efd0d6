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
// long at 10,000 documents as at 1,000).
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
	check := func(when string) {
		for name := range content.GroupQueries {
			reads, plan := dbtest.PlanReads(t, conn, "EXECUTE "+name+args[name])
			for _, r := range reads {
				if strings.HasPrefix(r, "seq scan of ") {
					t.Errorf("%s, %s: the generic plan makes a %s:\n%s", name, when, r, plan)
				}
			}
		}
	}
	add(0, 20)
	check("20 documents")
	for call := 1; call <= 4; call++ {
		add(call, 500)
	}
	check("2,020 documents, the plan made at 20")
}
