package queue

// FetcherStopped is closed once the bulk lane's fetcher was told to stop (its blocking read
// ended by the consumer's context).
func FetcherStopped(q *Queue) <-chan struct{} { return q.lanes[0].reads.stopped }
