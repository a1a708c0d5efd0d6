package jobs_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// listAll pages through List and returns the ids in the order served, checking each page.
func listAll(t *testing.T, m *jobs.Manager, p jobs.ListParams) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for range 100 {
		page, next, err := m.List(t.Context(), p)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), p.PageSize)
		if next != "" {
			require.Len(t, page, p.PageSize, "only the last page may be short")
		}
		for _, j := range page {
			require.False(t, seen[j.ID], "job %s served twice", j.ID)
			seen[j.ID] = true
			ids = append(ids, j.ID)
		}
		if next == "" {
			return ids
		}
		p.PageToken = next
	}
	t.Fatal("listing did not end")
	return nil
}

// newestFirst returns the ids of the jobs that match keep, in (created_at DESC, id DESC) order.
func newestFirst(all []*jobs.Job, keep func(*jobs.Job) bool) []uuid.UUID {
	var sel []*jobs.Job
	for _, j := range all {
		if keep(j) {
			sel = append(sel, j)
		}
	}
	slices.SortFunc(sel, func(a, b *jobs.Job) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
	var ids []uuid.UUID
	for _, j := range sel {
		ids = append(ids, j.ID)
	}
	return ids
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	sourceA, sourceB := b.source, insertSource(t, b.pool)

	var all []*jobs.Job
	for i := range 25 {
		typ := jobs.TypeProcess
		if i%3 == 0 {
			typ = jobs.TypeCrawl
		}
		source := sourceA
		if i%2 == 1 {
			source = sourceB
		}
		if typ == jobs.TypeCrawl {
			source = insertSource(t, b.pool) // one active crawl per source
		}
		job, err := b.mgr.Create(ctx, jobs.CreateParams{Type: typ, SourceID: source})
		require.NoError(t, err)
		if i%4 == 0 {
			job, err = b.mgr.Start(ctx, job.ID)
			require.NoError(t, err)
		}
		all = append(all, job)
	}
	every := func(*jobs.Job) bool { return true }

	got := listAll(t, b.mgr, jobs.ListParams{PageSize: 7})
	require.Len(t, got, 25)
	require.Equal(t, newestFirst(all, every), got)

	for _, tc := range []struct {
		name string
		p    jobs.ListParams
		keep func(*jobs.Job) bool
	}{
		{"source A", jobs.ListParams{SourceID: uuid.NullUUID{UUID: sourceA, Valid: true}},
			func(j *jobs.Job) bool { return j.SourceID == sourceA }},
		{"source B", jobs.ListParams{SourceID: uuid.NullUUID{UUID: sourceB, Valid: true}},
			func(j *jobs.Job) bool { return j.SourceID == sourceB }},
		{"crawl", jobs.ListParams{Type: jobs.TypeCrawl},
			func(j *jobs.Job) bool { return j.Type == jobs.TypeCrawl }},
		{"in progress", jobs.ListParams{Status: jobs.StatusInProgress},
			func(j *jobs.Job) bool { return j.Status == jobs.StatusInProgress }},
		{"source B, process, pending", jobs.ListParams{SourceID: uuid.NullUUID{UUID: sourceB, Valid: true}, Type: jobs.TypeProcess, Status: jobs.StatusPending},
			func(j *jobs.Job) bool {
				return j.SourceID == sourceB && j.Type == jobs.TypeProcess && j.Status == jobs.StatusPending
			}},
		{"completed", jobs.ListParams{Status: jobs.StatusCompleted},
			func(j *jobs.Job) bool { return false }},
	} {
		want := newestFirst(all, tc.keep)
		for _, size := range []int{1, 3, 5, 1000} {
			p := tc.p
			p.PageSize = size
			require.Equal(t, want, listAll(t, b.mgr, p), "%s, page size %d", tc.name, size)
		}
	}

	// A page that ends exactly at the last row has no next token.
	page, next, err := b.mgr.List(ctx, jobs.ListParams{PageSize: 25})
	require.NoError(t, err)
	require.Len(t, page, 25)
	require.Empty(t, next)

	// Default and capped page sizes.
	page, _, err = b.mgr.List(ctx, jobs.ListParams{})
	require.NoError(t, err)
	require.Len(t, page, 25)
	page, next, err = b.mgr.List(ctx, jobs.ListParams{PageSize: 5000})
	require.NoError(t, err)
	require.Len(t, page, 25)
	require.Empty(t, next)
}

func TestListSmallDefaultPage(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *jobs.Config) { c.DefaultPageSize, c.MaxPageSize = 2, 3 })
	for range 5 {
		b.createJob(t)
	}
	page, next, err := b.mgr.List(t.Context(), jobs.ListParams{})
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.NotEmpty(t, next)
	page, _, err = b.mgr.List(t.Context(), jobs.ListParams{PageSize: 1000})
	require.NoError(t, err)
	require.Len(t, page, 3, "page size is capped at MaxPageSize")
}

// TestListTiedCreatedAt pages through jobs that share created_at: id breaks the tie.
func TestListTiedCreatedAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 9 {
		b.createJob(t)
	}
	_, err := b.pool.Exec(t.Context(), `UPDATE jobs SET created_at = '2030-01-01T00:00:00Z'`)
	require.NoError(t, err)
	var want []uuid.UUID
	rows, err := b.pool.Query(t.Context(), `SELECT id FROM jobs ORDER BY id DESC`)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		want = append(want, id)
	}
	require.NoError(t, rows.Err())

	require.Equal(t, want, listAll(t, b.mgr, jobs.ListParams{PageSize: 2}))
}

func TestListRefusesBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for range 3 {
		b.createJob(t)
	}

	_, next, err := b.mgr.List(ctx, jobs.ListParams{PageSize: 1})
	require.NoError(t, err)
	require.NotEmpty(t, next)

	for _, p := range []jobs.ListParams{
		{PageSize: 1, PageToken: next, Type: jobs.TypeProcess},
		{PageSize: 1, PageToken: next, Status: jobs.StatusPending},
		{PageSize: 1, PageToken: next, SourceID: uuid.NullUUID{UUID: b.source, Valid: true}},
	} {
		_, _, err := b.mgr.List(ctx, p)
		requireInvalidArgument(t, err, "page_token")
	}
	for _, token := range []string{"garbage", "!!!", "AAAA", string(make([]byte, 100))} {
		_, _, err := b.mgr.List(ctx, jobs.ListParams{PageToken: token})
		requireInvalidArgument(t, err, "page_token")
	}

	_, _, err = b.mgr.List(ctx, jobs.ListParams{PageSize: -1})
	requireInvalidArgument(t, err, "page_size")
	_, _, err = b.mgr.List(ctx, jobs.ListParams{Type: "index"})
	requireInvalidArgument(t, err, "type")
	_, _, err = b.mgr.List(ctx, jobs.ListParams{Status: "running"})
	requireInvalidArgument(t, err, "status")

	// The same filters accept the token.
	page, _, err := b.mgr.List(ctx, jobs.ListParams{PageSize: 1, PageToken: next})
	require.NoError(t, err)
	require.Len(t, page, 1)
}
