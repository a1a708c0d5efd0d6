package queue

import "context"

// FetcherStopped is closed once the bulk lane's fetcher was told to stop (its blocking read
// ended by the consumer's context).
func FetcherStopped(q *Queue) <-chan struct{} { return q.lanes[0].reads.stopped }

// FreeSlots is how many of the bulk lane's slots its fetcher counts as free now; -1 before
// Consume starts.
func FreeSlots(q *Queue) int {
	free := q.lanes[0].reads.freeSlots.Load()
	if free == nil {
		return -1
	}
	return (*free)()
}

// EnqueueWithoutNumber sends a message for the batch as versions before messages carried the
// number of their enqueue did (one argument, the batch id), with its marker.
func EnqueueWithoutNumber(ctx context.Context, q *Queue, batchID string) error {
	if err := q.rdb.Set(ctx, q.markerKey(batchID), "1", q.cfg.MarkerTTL).Err(); err != nil {
		return err
	}
	return q.lanes[0].q.Add(q.task.WithArgs(ctx, batchID))
}
