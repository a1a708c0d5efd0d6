package content

import "slices"

// sourceTransitions is the source state machine, the only place it is written down: for each
// status, the statuses it may move to. processing -> processing is allowed because a source
// gets a new processing run while one is going (another upload, another batch).
var sourceTransitions = map[SourceStatus][]SourceStatus{
	SourceStatusPending:    {SourceStatusCrawling, SourceStatusProcessing, SourceStatusFailed},
	SourceStatusCrawling:   {SourceStatusProcessing, SourceStatusFailed, SourceStatusReady},
	SourceStatusProcessing: {SourceStatusReady, SourceStatusFailed, SourceStatusProcessing},
	SourceStatusReady:      {SourceStatusCrawling, SourceStatusProcessing},
	SourceStatusFailed:     {SourceStatusCrawling, SourceStatusProcessing},
}

// CanTransition reports whether a source may move from one status to another.
func CanTransition(from, to SourceStatus) bool {
	return slices.Contains(sourceTransitions[from], to)
}

// statusesInto lists the statuses from which a source may move to `to`, for the conditional
// UPDATE that makes the check and the write one step.
func statusesInto(to SourceStatus) []string {
	var from []string
	for _, s := range SourceStatuses {
		if CanTransition(s, to) {
			from = append(from, string(s))
		}
	}
	return from
}
