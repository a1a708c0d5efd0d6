package queue

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
