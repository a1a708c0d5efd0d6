package content_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/pagetoken"
)

type testBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *content.PgStore
}

func setup(t *testing.T, opts ...content.Option) *testBundle {
	t.Helper()
	pool := dbtest.New(t)
	return &testBundle{ctx: context.Background(), pool: pool, store: content.NewPgStore(pool, opts...)}
}

func (b *testBundle) source(t *testing.T) *content.Source {
	t.Helper()
	// A start URL belongs to one source, so each test source gets its own.
	src, err := b.store.CreateSource(b.ctx, &content.CreateSourceParams{URL: "https://example.com/docs/" + uuid.NewString()})
	require.NoError(t, err)
	return src
}

func (b *testBundle) upsert(t *testing.T, sourceID string, docs ...content.DocumentInput) []content.UpsertedDocument {
	t.Helper()
	res, err := b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: sourceID, Documents: docs})
	require.NoError(t, err)
	require.Len(t, res, len(docs))
	return res
}

func (b *testBundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, query, args...).Scan(&n))
	return n
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var ia *errs.InvalidArgumentError
	require.ErrorAs(t, err, &ia)
	require.Equal(t, field, ia.Field, ia.Error())
}

func requireNotFound(t *testing.T, err error, kind string) {
	t.Helper()
	var nf *errs.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, kind, nf.Kind)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCreateAndGetSource(t *testing.T) {
	t.Parallel()
	b := setup(t)

	web, err := b.store.CreateSource(b.ctx, &content.CreateSourceParams{
		URL:     "https://docs.example.com/start",
		Crawler: content.CrawlerFirecrawl,
		CrawlOptions: content.CrawlOptions{
			MaxDepth: 3, IncludePaths: []string{`^/docs/`}, ExcludePaths: []string{`\.pdf$`},
			AllowSubdomains: true, IgnoreQueryParameters: true,
		},
	})
	require.NoError(t, err)
	require.NoError(t, uuid.Validate(web.ID))
	require.Equal(t, "docs.example.com", web.Name)
	require.Equal(t, content.SourceStatusPending, web.Status)
	require.Equal(t, content.CrawlOptions{
		Limit: content.DefaultCrawlLimit, MaxDepth: 3, IncludePaths: []string{`^/docs/`}, ExcludePaths: []string{`\.pdf$`},
		AllowSubdomains: true, IgnoreQueryParameters: true,
	}, web.CrawlOptions)
	require.Equal(t, web.CreatedAt, web.UpdatedAt)
	require.Equal(t, time.UTC, web.CreatedAt.Location())

	got, err := b.store.GetSource(b.ctx, &content.GetSourceParams{ID: web.ID})
	require.NoError(t, err)
	require.Equal(t, web, got)

	upload, err := b.store.CreateSource(b.ctx, &content.CreateSourceParams{})
	require.NoError(t, err)
	require.Equal(t, "upload", upload.Name)
	require.Empty(t, upload.URL)
	require.Equal(t, content.CrawlerBuiltin, upload.Crawler)
	got, err = b.store.GetSource(b.ctx, &content.GetSourceParams{ID: upload.ID})
	require.NoError(t, err)
	require.Equal(t, upload, got)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM sources WHERE url IS NULL`), "an upload source stores url NULL")

	b.upsert(t, upload.ID, content.DocumentInput{URI: "a"}, content.DocumentInput{URI: "b"})
	got, err = b.store.GetSource(b.ctx, &content.GetSourceParams{ID: upload.ID})
	require.NoError(t, err)
	require.EqualValues(t, 2, got.DocumentCount)

	_, err = b.store.CreateSource(b.ctx, &content.CreateSourceParams{URL: "https://x.test", CrawlOptions: content.CrawlOptions{Limit: -5}})
	requireField(t, err, "crawl_options.limit")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM sources`), "a refused source writes nothing")
}

func TestGetSourceErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	missing := uuid.NewString()
	_, err := b.store.GetSource(b.ctx, &content.GetSourceParams{ID: missing})
	requireNotFound(t, err, "source")
	require.ErrorIs(t, err, errs.ErrNotFound)
	require.ErrorContains(t, err, missing)

	_, err = b.store.GetSource(b.ctx, &content.GetSourceParams{ID: "nope"})
	requireField(t, err, "id")
	_, err = b.store.GetSource(b.ctx, &content.GetSourceParams{})
	requireField(t, err, "id")
}

// walk follows next page tokens from the first page to the last.
func walk[T any](t *testing.T, list func(token string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "pagination does not end")
		page, next, err := list(token)
		require.NoError(t, err)
		all = append(all, page...)
		if next == "" {
			return all
		}
		require.NotEmpty(t, page, "a page with a next token has rows")
		token = next
	}
}

func newestFirst(aTime time.Time, aID string, bTime time.Time, bID string) int {
	return cmp.Or(bTime.Compare(aTime), cmp.Compare(bID, aID))
}

func TestListSourcesPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var all, processing []*content.Source
	for i := range 7 {
		src := b.source(t)
		if i%2 == 0 {
			var err error
			src, err = b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: content.SourceStatusProcessing})
			require.NoError(t, err)
			processing = append(processing, src)
		}
		all = append(all, src)
	}
	byOrder := func(x, y *content.Source) int { return newestFirst(x.CreatedAt, x.ID, y.CreatedAt, y.ID) }
	slices.SortFunc(all, byOrder)
	slices.SortFunc(processing, byOrder)

	for _, size := range []int{1, 2, 3, 7, 8, 0} {
		got := walk(t, func(token string) ([]*content.Source, string, error) {
			return b.store.ListSources(b.ctx, &content.ListSourcesParams{PageSize: size, PageToken: token})
		})
		require.Equal(t, all, got, "page size %d: every source once, newest first", size)
	}
	got := walk(t, func(token string) ([]*content.Source, string, error) {
		return b.store.ListSources(b.ctx, &content.ListSourcesParams{Status: content.SourceStatusProcessing, PageSize: 2, PageToken: token})
	})
	require.Equal(t, processing, got)

	page, next, err := b.store.ListSources(b.ctx, &content.ListSourcesParams{Status: content.SourceStatusFailed})
	require.NoError(t, err)
	require.Empty(t, page)
	require.Empty(t, next)

	// A token is bound to its filter.
	_, next, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{PageSize: 2})
	require.NoError(t, err)
	require.NotEmpty(t, next)
	_, _, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{Status: content.SourceStatusProcessing, PageToken: next})
	requireField(t, err, pagetoken.Field)

	_, _, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{PageToken: "garbage!"})
	requireField(t, err, "page_token")
	_, _, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{PageSize: -1})
	requireField(t, err, "page_size")
	_, _, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{Status: "done"})
	requireField(t, err, "status")

	page, _, err = b.store.ListSources(b.ctx, &content.ListSourcesParams{PageSize: content.MaxPageSize + 1})
	require.NoError(t, err, "a page size over the maximum is lowered, not refused")
	require.Len(t, page, 7)
}

func TestDeleteSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gone, kept := b.source(t), b.source(t)
	docs := b.upsert(t, gone.ID, content.DocumentInput{URI: "a", Content: "1"}, content.DocumentInput{URI: "b", Content: "2"})
	b.upsert(t, kept.ID, content.DocumentInput{URI: "a", Content: "1"})

	deleted, err := b.store.DeleteSource(b.ctx, &content.DeleteSourceParams{ID: gone.ID})
	require.NoError(t, err)
	require.Equal(t, gone.ID, deleted.ID)
	require.EqualValues(t, 2, deleted.DocumentCount, "the count says how many documents went with it")

	_, err = b.store.GetSource(b.ctx, &content.GetSourceParams{ID: gone.ID})
	requireNotFound(t, err, "source")
	_, err = b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: docs[0].Document.ID})
	requireNotFound(t, err, "document")
	require.Zero(t, b.count(t, `SELECT count(*) FROM documents WHERE source_id = $1`, gone.ID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM documents WHERE source_id = $1`, kept.ID))

	_, err = b.store.DeleteSource(b.ctx, &content.DeleteSourceParams{ID: gone.ID})
	requireNotFound(t, err, "source")
	_, err = b.store.DeleteSource(b.ctx, &content.DeleteSourceParams{ID: "x"})
	requireField(t, err, "id")
}

// legal is the source state machine as the spec writes it, kept apart from the code under test.
var legal = map[content.SourceStatus][]content.SourceStatus{
	"pending":    {"crawling", "processing", "failed"},
	"crawling":   {"processing", "failed", "ready"},
	"processing": {"ready", "failed", "processing"},
	"ready":      {"crawling", "processing"},
	"failed":     {"crawling", "processing"},
}

// pathTo is a legal way from pending to each status.
var pathTo = map[content.SourceStatus][]content.SourceStatus{
	"pending":    nil,
	"crawling":   {"crawling"},
	"processing": {"processing"},
	"ready":      {"crawling", "ready"},
	"failed":     {"failed"},
}

func TestSourceStatusTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, from := range content.SourceStatuses {
		for _, to := range content.SourceStatuses {
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				t.Parallel()
				want := slices.Contains(legal[from], to)
				require.Equal(t, want, content.CanTransition(from, to))

				src := b.source(t)
				for _, step := range pathTo[from] {
					var err error
					src, err = b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: step, Error: "before"})
					require.NoError(t, err)
				}
				require.Equal(t, from, src.Status)

				got, err := b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: to, Error: "after"})
				after, getErr := b.store.GetSource(b.ctx, &content.GetSourceParams{ID: src.ID})
				require.NoError(t, getErr)
				if want {
					require.NoError(t, err)
					require.Equal(t, to, got.Status)
					require.Equal(t, "after", got.Error)
					require.Equal(t, got, after)
					require.False(t, got.UpdatedAt.Before(src.UpdatedAt))
					return
				}
				require.ErrorIs(t, err, errs.ErrFailedPrecondition)
				require.ErrorContains(t, err, string(from)+" to "+string(to))
				require.Nil(t, got)
				require.Equal(t, src, after, "an illegal transition writes nothing")
			})
		}
	}
}

func TestUpdateSourceStatusDetails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	update := func(status content.SourceStatus, msg string) (*content.Source, error) {
		return b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: status, Error: msg})
	}

	first, err := update(content.SourceStatusProcessing, "")
	require.NoError(t, err)
	again, err := update(content.SourceStatusProcessing, "")
	require.NoError(t, err, "processing may be entered again")
	require.Equal(t, first, again, "repeating the same status and error is a no-op")

	failed, err := update(content.SourceStatusFailed, "bad\xffbyte\x00here")
	require.NoError(t, err)
	require.Equal(t, "bad\uFFFDbytehere", failed.Error, "errors are stored as valid text")

	_, err = update("done", "")
	requireField(t, err, "status")
	_, err = b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: uuid.NewString(), Status: content.SourceStatusReady})
	requireNotFound(t, err, "source")
}

func TestConcurrentStatusUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// From pending, each goroutine tries pending -> crawling. Only the first can succeed:
	// crawling -> crawling is illegal, so the conditional update must refuse the rest.
	src := b.source(t)
	const n = 8
	var wg sync.WaitGroup
	errsCh := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: content.SourceStatusCrawling})
			errsCh <- err
		})
	}
	wg.Wait()
	close(errsCh)
	ok := 0
	for err := range errsCh {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	}
	require.Equal(t, 1, ok)
}

func TestUpsertDocumentsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	docs := []content.DocumentInput{
		{URI: "https://example.com/docs/intro", Title: "Intro", ContentType: content.ContentTypeMarkdown, Content: "# Intro", Metadata: map[string]string{"lang": "en"}},
		{URI: "guide.md", Content: "some *markdown*"},
		{URI: "page.html", Content: "<p>hi</p>"},
		{URI: "notes", Content: ""},
	}

	first := b.upsert(t, src.ID, docs...)
	for i, r := range first {
		require.True(t, r.Created, i)
		require.True(t, r.Changed, i)
		require.Equal(t, docs[i].URI, r.Document.URI)
		require.Equal(t, docs[i].Content, r.Document.Content)
		require.Equal(t, hash(docs[i].Content), r.Document.ContentHash)
		require.EqualValues(t, len(docs[i].Content), r.Document.SizeBytes)
		require.Equal(t, src.ID, r.Document.SourceID)
	}
	require.Equal(t, map[string]string{"lang": "en"}, first[0].Document.Metadata)
	require.Equal(t, map[string]string{}, first[1].Document.Metadata)
	require.Equal(t, []string{content.ContentTypeMarkdown, content.ContentTypeMarkdown, content.ContentTypeHTML, content.ContentTypeText},
		[]string{first[0].Document.ContentType, first[1].Document.ContentType, first[2].Document.ContentType, first[3].Document.ContentType})

	stored, err := b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: first[0].Document.ID})
	require.NoError(t, err)
	require.Equal(t, first[0].Document, stored)

	second := b.upsert(t, src.ID, docs...)
	for i, r := range second {
		require.False(t, r.Created, i)
		require.False(t, r.Changed, i)
		require.Equal(t, first[i].Document, r.Document, "an unchanged document keeps its id and updated_at")
	}
	require.Equal(t, len(docs), b.count(t, `SELECT count(*) FROM documents`))

	// Change the content of one and the title of another; the rest stay as they are.
	docs[1].Content = "new *markdown*"
	docs[2].Title = "Page"
	third := b.upsert(t, src.ID, docs...)
	require.Equal(t, []bool{false, true, true, false},
		[]bool{third[0].Changed, third[1].Changed, third[2].Changed, third[3].Changed})
	for i, r := range third {
		require.False(t, r.Created, i)
		require.Equal(t, first[i].Document.ID, r.Document.ID)
		require.Equal(t, first[i].Document.CreatedAt, r.Document.CreatedAt)
	}
	require.Equal(t, hash("new *markdown*"), third[1].Document.ContentHash)
	require.NotEqual(t, first[1].Document.ContentHash, third[1].Document.ContentHash)
	require.True(t, third[1].Document.UpdatedAt.After(first[1].Document.UpdatedAt))
	require.Equal(t, first[2].Document.ContentHash, third[2].Document.ContentHash)
	require.Equal(t, "Page", third[2].Document.Title)
	require.Equal(t, first[0].Document.UpdatedAt, third[0].Document.UpdatedAt)
	require.Equal(t, len(docs), b.count(t, `SELECT count(*) FROM documents`))

	got, err := b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: third[1].Document.ID})
	require.NoError(t, err)
	require.Equal(t, "new *markdown*", got.Content)

	// An empty batch is fine and writes nothing.
	res, err := b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: src.ID})
	require.NoError(t, err)
	require.Empty(t, res)
}

func TestUpsertDocumentsAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	existing := b.upsert(t, src.ID, content.DocumentInput{URI: "kept", Content: "v1"})

	for _, tc := range []struct {
		name  string
		bad   content.DocumentInput
		field string
	}{
		{"nul content", content.DocumentInput{URI: "z", Content: "a\x00b"}, "documents[2].content"},
		{"invalid utf-8", content.DocumentInput{URI: "z", Content: "\xed\xa0\x80"}, "documents[2].content"},
		{"bad type", content.DocumentInput{URI: "z", ContentType: "image/png"}, "documents[2].content_type"},
		{"duplicate", content.DocumentInput{URI: "new"}, "documents[2].uri"},
	} {
		_, err := b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: src.ID, Documents: []content.DocumentInput{
			{URI: "kept", Content: "v2"},
			{URI: "new", Content: "fresh"},
			tc.bad,
		}})
		requireField(t, err, tc.field)
	}
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM documents`), "no document of a refused batch is stored")
	got, err := b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: existing[0].Document.ID})
	require.NoError(t, err)
	require.Equal(t, "v1", got.Content, "nor is any update of a refused batch")

	_, err = b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: uuid.NewString(), Documents: []content.DocumentInput{{URI: "a"}}})
	requireNotFound(t, err, "source")
	_, err = b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: "x", Documents: []content.DocumentInput{{URI: "a"}}})
	requireField(t, err, "source_id")
}

func TestUpsertDocumentsSizeLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, content.WithMaxDocumentBytes(16))
	src := b.source(t)
	b.upsert(t, src.ID, content.DocumentInput{URI: "fits", Content: "0123456789abcdef"})
	_, err := b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: src.ID, Documents: []content.DocumentInput{{URI: "big", Content: "0123456789abcdef!"}}})
	requireField(t, err, "documents[0].content")
}

func TestUpsertDocumentsConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([][]content.UpsertedDocument, n)
	failures := make([]error, n)
	for g := range n {
		wg.Go(func() {
			// Every goroutine writes the same uris, in its own order and some with its own
			// content, which would deadlock if rows were locked in input order.
			docs := []content.DocumentInput{
				{URI: "same", Content: fmt.Sprintf("version %d", g)},
				{URI: "shared-a", Content: "a"},
				{URI: "shared-b", Content: "b"},
			}
			rand.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
			results[g], failures[g] = b.store.UpsertDocuments(b.ctx, &content.UpsertDocumentsParams{SourceID: src.ID, Documents: docs})
		})
	}
	wg.Wait()

	ids := map[string]map[string]bool{}
	created := map[string]int{}
	for g := range n {
		require.NoError(t, failures[g])
		for _, r := range results[g] {
			if ids[r.Document.URI] == nil {
				ids[r.Document.URI] = map[string]bool{}
			}
			ids[r.Document.URI][r.Document.ID] = true
			if r.Created {
				created[r.Document.URI]++
			}
		}
	}
	for _, uri := range []string{"same", "shared-a", "shared-b"} {
		require.Len(t, ids[uri], 1, "every writer of %s saw the same row", uri)
		require.Equal(t, 1, created[uri], "exactly one writer created %s", uri)
	}
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM documents WHERE uri = 'same'`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM documents`))
}

func TestListDocumentsPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src, other, empty := b.source(t), b.source(t), b.source(t)

	// Three batches: rows of one batch share created_at, so the id breaks the tie.
	var want []content.DocumentSummary
	for batch, size := range []int{3, 1, 4} {
		docs := make([]content.DocumentInput, size)
		for i := range docs {
			docs[i] = content.DocumentInput{URI: fmt.Sprintf("doc-%d-%d", batch, i), Content: "text", Metadata: map[string]string{"i": fmt.Sprint(i)}}
		}
		for _, r := range b.upsert(t, src.ID, docs...) {
			want = append(want, r.Document.DocumentSummary)
		}
	}
	b.upsert(t, other.ID, content.DocumentInput{URI: "doc-0-0"}, content.DocumentInput{URI: "elsewhere"})
	slices.SortFunc(want, func(x, y content.DocumentSummary) int { return newestFirst(x.CreatedAt, x.ID, y.CreatedAt, y.ID) })

	for _, size := range []int{1, 3, 8, 0} {
		got := walk(t, func(token string) ([]*content.DocumentSummary, string, error) {
			return b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: src.ID, PageSize: size, PageToken: token})
		})
		var flat []content.DocumentSummary
		for _, d := range got {
			flat = append(flat, *d)
		}
		require.Equal(t, want, flat, "page size %d: every document once, newest first", size)
	}

	page, next, err := b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: empty.ID})
	require.NoError(t, err)
	require.Empty(t, page)
	require.Empty(t, next)

	_, next, err = b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: src.ID, PageSize: 2})
	require.NoError(t, err)
	_, _, err = b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: other.ID, PageToken: next})
	requireField(t, err, "page_token")
	_, _, err = b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: src.ID, PageToken: next[:len(next)-2]})
	requireField(t, err, "page_token")
	_, _, err = b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{})
	requireField(t, err, "source_id")
	_, _, err = b.store.ListDocuments(b.ctx, &content.ListDocumentsParams{SourceID: uuid.NewString()})
	requireNotFound(t, err, "source")
}

func TestGetDocuments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	res := b.upsert(t, src.ID,
		content.DocumentInput{URI: "a", Content: "alpha"},
		content.DocumentInput{URI: "b", Content: "beta"},
		content.DocumentInput{URI: "c", Content: "gamma"},
	)
	a, bb, c := res[0].Document, res[1].Document, res[2].Document

	got, err := b.store.GetDocumentsByIDs(b.ctx, &content.GetDocumentsByIDsParams{IDs: []string{c.ID, uuid.NewString(), a.ID, c.ID}})
	require.NoError(t, err)
	require.Equal(t, []*content.Document{c, a}, got, "found ones in the order asked, missing ones left out, repeats once")

	got, err = b.store.GetDocumentsByIDs(b.ctx, &content.GetDocumentsByIDsParams{})
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = b.store.GetDocumentsByIDs(b.ctx, &content.GetDocumentsByIDsParams{IDs: []string{bb.ID, "zzz"}})
	requireField(t, err, "ids")

	one, err := b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: bb.ID})
	require.NoError(t, err)
	require.Equal(t, bb, one)
	_, err = b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: uuid.NewString()})
	requireNotFound(t, err, "document")
	_, err = b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: ""})
	requireField(t, err, "id")
}

func TestUnicodeRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	text := "emoji 🦫, max \U0010FFFF, nonchar \uFFFF, line sep \u2028, bom \uFEFF, tab\tand \x01"
	res := b.upsert(t, src.ID, content.DocumentInput{URI: "ünï/" + text, Title: text, Content: text, Metadata: map[string]string{text: text}})
	got, err := b.store.GetDocument(b.ctx, &content.GetDocumentParams{ID: res[0].Document.ID})
	require.NoError(t, err)
	require.Equal(t, res[0].Document, got)
	require.Equal(t, text, got.Content)
	require.Equal(t, map[string]string{text: text}, got.Metadata)
	again := b.upsert(t, src.ID, content.DocumentInput{URI: "ünï/" + text, Title: text, Content: text, Metadata: map[string]string{text: text}})
	require.False(t, again[0].Changed, "metadata compares equal after a jsonb round trip")
}

func TestOneSourcePerURL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, err := b.store.CreateSource(b.ctx, &content.CreateSourceParams{URL: "https://example.com/a"})
	require.NoError(t, err)
	_, err = b.store.CreateSource(b.ctx, &content.CreateSourceParams{URL: "https://example.com/a"})
	require.ErrorIs(t, err, errs.ErrAlreadyExists)
	got, err := b.store.SourceByURL(b.ctx, "https://example.com/a")
	require.NoError(t, err)
	require.Equal(t, first.ID, got.ID)
	_, err = b.store.SourceByURL(b.ctx, "https://example.com/none")
	require.ErrorIs(t, err, errs.ErrNotFound)
	// Upload sources have no URL and are not limited.
	for range 2 {
		_, err := b.store.CreateSource(b.ctx, &content.CreateSourceParams{Name: "uploads"})
		require.NoError(t, err)
	}
}
