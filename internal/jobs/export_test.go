package jobs

// WaitingBatchCalls tells how many ClaimBatch and FinishBatch calls wait for a group (tests
// poll it to know that calls made at once will share the next group).
func WaitingBatchCalls(m *Manager) int {
	m.batches.mu.Lock()
	defer m.batches.mu.Unlock()
	return len(m.batches.queue)
}
