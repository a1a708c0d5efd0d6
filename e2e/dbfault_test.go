package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// TestIndexStateWriteSurvivesLostConnection: the connection that records a document's index
// state dies mid-statement (what a Postgres restart does; found by the chaos suite). The worker
// retries the write and the document succeeds, instead of failing with vectors already written.
func TestIndexStateWriteSurvivesLostConnection(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	// The first two index-state writes kill their own backend. A sequence counts them: it is not
	// rolled back with the dying transaction.
	_, err := b.app.Pool.Exec(tctx(t), `
		CREATE SEQUENCE index_state_kills;
		CREATE FUNCTION kill_own_backend() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('index_state_kills') <= 2 THEN
				PERFORM pg_terminate_backend(pg_backend_pid());
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER kill_own_backend BEFORE INSERT OR UPDATE ON document_index_state
			FOR EACH ROW EXECUTE FUNCTION kill_own_backend();`)
	require.NoError(t, err)

	src := b.newSource(t)
	resp := b.ingest(t, src, doc(1, ""), doc(2, ""))
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	final := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, final.GetStatus())
	require.EqualValues(t, 2, final.GetProcessing().GetProcessedCount(), "both documents succeeded")
	require.Zero(t, final.GetProcessing().GetErrorCount())

	var kills int64
	require.NoError(t, b.app.Pool.QueryRow(tctx(t), `SELECT last_value FROM index_state_kills`).Scan(&kills))
	require.GreaterOrEqual(t, kills, int64(3), "two writes were killed and at least one more went through")
	results, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: resp.GetJob().GetJobId()})
	require.NoError(t, err)
	var retried bool
	for _, r := range results.GetResults() {
		retried = retried || r.GetAttempts() > 1
	}
	require.True(t, retried, "a killed write shows as a retry in the document's attempts")
	require.Equal(t, int(final.GetProcessing().GetChunkCount()), b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}))
	b.requireSearchable(t, resp, 1, 2)
}
