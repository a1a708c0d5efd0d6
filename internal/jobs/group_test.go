package jobs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// testGrouper is a grouper whose commit records its groups and can be held, so a test can line
// calls up behind a commit in flight.
type testGrouper struct {
	*grouper[uuid.UUID, string]
	mu     sync.Mutex
	groups [][]uuid.UUID
	at     []time.Time   // when each commit began
	hold   chan struct{} // when set, each commit waits for a receive on it
	fail   func(reqs []uuid.UUID) error
	told   [][]string // what committed was given
	// holdTold, when set, makes committed wait for a receive on it.
	holdTold chan struct{}
	left     []uuid.UUID // what abandoned was given
}

func newTestGrouper(maxCalls int) *testGrouper {
	tg := &testGrouper{}
	tg.grouper = &grouper[uuid.UUID, string]{
		maxCalls: maxCalls, maxInFlight: 1,
		key: func(id uuid.UUID) uuid.UUID { return id },
		commit: func(_ context.Context, reqs []uuid.UUID) ([]string, error) {
			tg.mu.Lock()
			tg.groups = append(tg.groups, slices.Clone(reqs))
			tg.at = append(tg.at, time.Now())
			hold, fail := tg.hold, tg.fail
			tg.mu.Unlock()
			if hold != nil {
				<-hold
			}
			if fail != nil {
				if err := fail(reqs); err != nil {
					return nil, err
				}
			}
			out := make([]string, len(reqs))
			for i, id := range reqs {
				out[i] = "done " + id.String()
			}
			return out, nil
		},
		retryAlone: func(err error) bool { return !errors.Is(err, errUnreachable) },
		abandoned: func(_ context.Context, id uuid.UUID, _ string) {
			tg.mu.Lock()
			tg.left = append(tg.left, id)
			tg.mu.Unlock()
		},
		committed: func(_ context.Context, _ []uuid.UUID, res []string) {
			tg.mu.Lock()
			tg.told = append(tg.told, slices.Clone(res))
			hold := tg.holdTold
			tg.mu.Unlock()
			if hold != nil {
				<-hold
			}
		},
	}
	return tg
}

var (
	errUnreachable = errors.New("unreachable")
	errBad         = errors.New("bad call")
)

// started says how many commits have begun.
func (tg *testGrouper) started() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.groups)
}

// waitFor polls until cond holds (or fails the test after 10 s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond)
}

// queued says how many calls wait for a group.
func (tg *testGrouper) queued() int {
	tg.mu.Lock() // not needed for g.mu, but keeps the reads ordered with the commit's
	defer tg.mu.Unlock()
	tg.grouper.mu.Lock()
	defer tg.grouper.mu.Unlock()
	return len(tg.grouper.queue)
}

type callResult struct {
	res string
	err error
}

// call runs one do in the background.
func (tg *testGrouper) call(ctx context.Context, id uuid.UUID) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := tg.do(ctx, id)
		ch <- callResult{res, err}
	}()
	return ch
}

// A lone call is committed at once, alone. Calls that arrive while a commit is in flight go
// together in the next one, up to maxCalls, and each gets its own result; committed sees each
// group's results.
func TestGrouperGroupsCallsArrivingDuringACommit(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(3)
	first := uuid.New()
	res, err := tg.do(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, "done "+first.String(), res)
	require.Equal(t, [][]uuid.UUID{{first}}, tg.groups)

	tg.hold = make(chan struct{})
	blocker := uuid.New()
	blocked := tg.call(t.Context(), blocker)
	waitFor(t, func() bool { return tg.started() == 2 })
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	var answers []<-chan callResult
	for i, id := range ids {
		answers = append(answers, tg.call(t.Context(), id))
		waitFor(t, func() bool { return tg.queued() == i+1 }) // keep the arrival order
	}
	close(tg.hold) // every commit from now on goes through
	require.NoError(t, (<-blocked).err)
	for i, a := range answers {
		got := <-a
		require.NoError(t, got.err)
		require.Equal(t, "done "+ids[i].String(), got.res)
	}
	require.Equal(t, [][]uuid.UUID{{first}, {blocker}, ids[:3], ids[3:]}, tg.groups, "at most 3 per group, in arrival order")
	waitFor(t, func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return len(tg.told) == 4
	})
}

// Two calls for the same key never share a group: the second waits for the next.
func TestGrouperKeepsOneCallPerKeyInAGroup(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(10)
	tg.hold = make(chan struct{})
	blocked := tg.call(t.Context(), uuid.New())
	waitFor(t, func() bool { return tg.started() == 1 })
	a, b := uuid.New(), uuid.New()
	var answers []<-chan callResult
	for i, id := range []uuid.UUID{a, a, b} {
		answers = append(answers, tg.call(t.Context(), id))
		waitFor(t, func() bool { return tg.queued() == i+1 })
	}
	close(tg.hold)
	require.NoError(t, (<-blocked).err)
	for _, ans := range answers {
		require.NoError(t, (<-ans).err)
	}
	require.Equal(t, []uuid.UUID{a, b}, tg.groups[1])
	require.Equal(t, []uuid.UUID{a}, tg.groups[2])
}

// A group of several that fails for a reason worth it is tried call by call, so only the bad
// call fails; a failure that would fail each again (Postgres unreachable) fails them all at
// once, with no retries.
func TestGrouperRetriesAFailedGroupCallByCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		err     error
		commits int // after the blocker's
	}{
		{"one bad call", errBad, 1 + 3},
		{"unreachable", errUnreachable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGrouper(10)
			tg.hold = make(chan struct{})
			blocked := tg.call(t.Context(), uuid.New())
			waitFor(t, func() bool { return tg.started() == 1 })
			bad := uuid.New()
			ids := []uuid.UUID{uuid.New(), bad, uuid.New()}
			tg.mu.Lock()
			tg.fail = func(reqs []uuid.UUID) error {
				if slices.Contains(reqs, bad) || tc.err == errUnreachable {
					return tc.err
				}
				return nil
			}
			tg.mu.Unlock()
			var answers []<-chan callResult
			for i, id := range ids {
				answers = append(answers, tg.call(t.Context(), id))
				waitFor(t, func() bool { return tg.queued() == i+1 })
			}
			close(tg.hold)
			<-blocked
			for i, ans := range answers {
				got := <-ans
				if ids[i] == bad || tc.err == errUnreachable {
					require.ErrorIs(t, got.err, tc.err)
				} else {
					require.NoError(t, got.err)
				}
			}
			require.Len(t, tg.groups, 1+tc.commits)
		})
	}
}

// A caller that goes away while its call waits gets its context's error, and its call is left
// out of the next group.
func TestGrouperSkipsAbandonedCalls(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(10)
	tg.hold = make(chan struct{})
	blocked := tg.call(t.Context(), uuid.New())
	waitFor(t, func() bool { return tg.started() == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	gone, kept := uuid.New(), uuid.New()
	goneAns := tg.call(ctx, gone)
	waitFor(t, func() bool { return tg.queued() == 1 })
	keptAns := tg.call(t.Context(), kept)
	waitFor(t, func() bool { return tg.queued() == 2 })
	cancel()
	require.ErrorIs(t, (<-goneAns).err, context.Canceled)
	close(tg.hold)
	<-blocked
	require.NoError(t, (<-keptAns).err)
	require.Equal(t, []uuid.UUID{kept}, tg.groups[1])
}

// A call is answered before committed runs for its group; flush waits for committed.
func TestGrouperFlushWaitsForTheAnnouncements(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(10)
	require.NoError(t, tg.flush(t.Context()), "nothing ever ran")
	tg.holdTold = make(chan struct{})
	_, err := tg.do(t.Context(), uuid.New())
	require.NoError(t, err, "answered while committed is held")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, tg.flush(ctx), context.DeadlineExceeded)
	close(tg.holdTold)
	require.NoError(t, tg.flush(t.Context()))
	require.Len(t, tg.told, 1)
}

// A call whose caller goes away while its group is being committed is still committed; the
// grouper hands its result to abandoned (for a claim: give the batch back).
func TestGrouperHandsOverWhatWasCommittedForACallerThatLeft(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(10)
	tg.hold = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	id := uuid.New()
	ans := tg.call(ctx, id)
	waitFor(t, func() bool { return tg.started() == 1 }) // in the commit
	cancel()
	require.ErrorIs(t, (<-ans).err, context.Canceled)
	close(tg.hold)
	require.NoError(t, tg.flush(t.Context()))
	tg.mu.Lock()
	defer tg.mu.Unlock()
	require.Equal(t, []uuid.UUID{id}, tg.left)
}

// Calls that arrive while a group runs wait for it and go together, also when more groups may
// run at once, until the group has run stallAfter: then they start one of their own beside it,
// so that a slow transaction does not hold them up for longer, even if no other call comes.
func TestGrouperStartsASecondGroupOnlyBesideAStalledOne(t *testing.T) {
	t.Parallel()
	const stall = 50 * time.Millisecond
	tg := newTestGrouper(8)
	tg.maxInFlight, tg.stallAfter = 2, stall
	tg.hold = make(chan struct{})
	blocker := uuid.New()
	blocked := tg.call(t.Context(), blocker)
	waitFor(t, func() bool { return tg.started() == 1 })
	tg.grouper.mu.Lock()
	firstTaken := tg.grouper.lastStart
	tg.grouper.mu.Unlock()
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	var answers []<-chan callResult
	for i, id := range ids {
		answers = append(answers, tg.call(t.Context(), id))
		waitFor(t, func() bool { return tg.queued() == i+1 || tg.started() == 2 })
	}
	// The first group is still held: the others start a group of their own once it has run
	// stallAfter, together, and not before.
	waitFor(t, func() bool { return tg.started() == 2 })
	tg.mu.Lock()
	require.GreaterOrEqual(t, tg.at[1].Sub(firstTaken), stall, "a second group began beside a group that had not stalled")
	require.ElementsMatch(t, ids, tg.groups[1], "the calls waiting behind the stalled group went together")
	tg.mu.Unlock()
	// Both groups are held; a third may not start (maxInFlight).
	third := tg.call(t.Context(), uuid.New())
	waitFor(t, func() bool { return tg.queued() == 1 })
	require.Never(t, func() bool { return tg.started() == 3 }, 2*stall, 5*time.Millisecond, "more groups than maxInFlight")
	close(tg.hold)
	for _, a := range append(answers, blocked, third) {
		require.NoError(t, (<-a).err)
	}
}

// Once a group's transaction is over, the next group does not wait for its announcement: calls
// that come while it is announced are committed at once, beside it.
func TestGrouperCommitsTheNextGroupWhileOneIsAnnounced(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(8)
	tg.maxInFlight, tg.stallAfter = 2, time.Hour
	tg.holdTold = make(chan struct{})
	first := tg.call(t.Context(), uuid.New())
	require.NoError(t, (<-first).err) // answered; its announcement is held
	waitFor(t, func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return len(tg.told) == 1
	})
	second := uuid.New()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got := <-tg.call(ctx, second)
	require.NoError(t, got.err, "the second group waited for the first one's announcement")
	require.Equal(t, "done "+second.String(), got.res)
	close(tg.holdTold)
	require.NoError(t, tg.flush(t.Context()))
}

// Groups are announced in the order they were answered: a group committed while the one before
// it is still being announced waits to be announced after it (a job's last finish is not
// announced before the claim that started it).
func TestGrouperAnnouncesGroupsInTheOrderTheyWereAnswered(t *testing.T) {
	t.Parallel()
	tg := newTestGrouper(8)
	tg.maxInFlight, tg.stallAfter = 2, time.Hour
	tg.holdTold = make(chan struct{})
	first := uuid.New()
	require.NoError(t, (<-tg.call(t.Context(), first)).err) // its announcement is held
	told := func() int {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return len(tg.told)
	}
	waitFor(t, func() bool { return told() == 1 })
	second := uuid.New()
	require.NoError(t, (<-tg.call(t.Context(), second)).err, "the second group waited for the first one's announcement")
	require.Never(t, func() bool { return told() > 1 }, 100*time.Millisecond, time.Millisecond,
		"the second group was announced while the first one's announcement was under way")
	tg.holdTold <- struct{}{} // the first announcement ends
	tg.holdTold <- struct{}{} // the second's begins and ends
	require.NoError(t, tg.flush(t.Context()))
	require.Equal(t, [][]string{{"done " + first.String()}, {"done " + second.String()}}, tg.told)
}
