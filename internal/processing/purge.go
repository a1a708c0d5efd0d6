package processing

import (
	"context"
	"errors"
	"log/slog"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Purger removes deleted sources' vectors. DeleteSource records the purge in Postgres in the
// statement that deletes the source; Purger does it at once and the reconciler retries what
// failed, so deleting a source really deletes its vectors even when the store was down.
type Purger struct {
	Content *content.PgStore
	Vectors vector.Store
	Log     *slog.Logger
}

// Purge deletes one source's vectors and records the outcome.
func (p *Purger) Purge(ctx context.Context, sourceID string) error {
	err := p.Vectors.DeleteSource(ctx, sourceID)
	if ferr := p.Content.FinishPurge(ctx, sourceID, err); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// PurgePending retries up to max pending purges and returns how many succeeded.
func (p *Purger) PurgePending(ctx context.Context, max int) (int, error) {
	ids, err := p.Content.PendingPurges(ctx, max)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := p.Purge(ctx, id); err != nil {
			return n, err // the store is still down: try the rest next time
		}
		n++
	}
	return n, nil
}
