package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// site is a small web site whose pages tests can change between crawls.
type site struct {
	mu    sync.Mutex
	pages map[string]string // path -> body HTML (inside <main>)
	hits  map[string]int
	srv   *httptest.Server
}

func newSite(t *testing.T) *site {
	s := &site{pages: map[string]string{}, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		body, ok := s.pages[r.URL.Path]
		var links []string
		for p := range s.pages {
			links = append(links, fmt.Sprintf(`<li><a href="%s">%s</a></li>`, p, p))
		}
		s.mu.Unlock()
		if r.URL.Path == "/robots.txt" {
			fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><head><title>%s</title></head><body><nav><ul>%s</ul></nav><main>%s</main>
<footer>Copyright footer text</footer></body></html>`, strings.TrimPrefix(r.URL.Path, "/"), strings.Join(links, ""), body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) set(path, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == "" {
		delete(s.pages, path)
		return
	}
	s.pages[path] = body
}

func page(marker int, extra string) string {
	return fmt.Sprintf("<h1>Page about marker%03d</h1><p>This page explains marker%03d in detail. %s</p>", marker, marker, extra)
}

// crawlToEnd waits for the source's crawl job and the processing job after it to end, and
// returns the crawl job's final state.
func (b *bundle) crawlToEnd(t *testing.T, crawlJobID string) *pipelinev1.Job {
	t.Helper()
	seen := b.watchUntilDone(t, crawlJobID)
	crawl := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, crawl.GetStatus(), "crawl error: %s", crawl.GetError())
	for i := 1; i < len(seen); i++ {
		require.GreaterOrEqual(t, seen[i].GetCrawl().GetPagesFetched(), seen[i-1].GetCrawl().GetPagesFetched())
	}
	// The processing job started by the crawl, if any, must end too.
	jobs, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{SourceId: crawl.GetSourceId(), Type: pipelinev1.JobType_JOB_TYPE_PROCESS})
	require.NoError(t, err)
	for _, j := range jobs.GetJobs() {
		if j.GetCreateTime().AsTime().After(crawl.GetCreateTime().AsTime()) {
			b.watchUntilDone(t, j.GetJobId())
		}
	}
	return crawl
}

func TestCrawlRefreshDelete(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	s := newSite(t)
	for i := 1; i <= 5; i++ {
		s.set(fmt.Sprintf("/p%d", i), page(i, ""))
	}
	s.set("/", "<h1>Home</h1><p>Start here.</p>")
	s.set("/private/secret", page(99, "should never be fetched"))

	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: s.srv.URL + "/"})
	require.NoError(t, err)
	src := resp.GetSource().GetSourceId()
	crawl := b.crawlToEnd(t, resp.GetJob().GetJobId())
	require.EqualValues(t, 6, crawl.GetCrawl().GetPagesFetched())
	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)
	require.Zero(t, s.hits["/private/secret"], "robots.txt is obeyed")

	hits, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "marker003", SourceIds: []string{src}, TopK: 1})
	require.NoError(t, err)
	require.NotEmpty(t, hits.GetResults())
	require.Equal(t, s.srv.URL+"/p3", hits.GetResults()[0].GetUri())
	require.NotContains(t, hits.GetResults()[0].GetText(), "Copyright footer", "navigation and footers are dropped")

	// A second create/refresh while nothing runs starts a new crawl; while one runs, it is returned.
	before := b.embedder.callsOf("marker001")
	s.set("/p2", page(2, "Changed: now also mentions marker222."))
	s.set("/p4", "")                   // removed
	s.set("/p6", page(6, "New page.")) // added
	refresh, err := b.content.RefreshSource(tctx(t), &pipelinev1.RefreshSourceRequest{SourceId: src})
	require.NoError(t, err)
	again, err := b.content.RefreshSource(tctx(t), &pipelinev1.RefreshSourceRequest{SourceId: src})
	require.NoError(t, err)
	if again.GetJob().GetStatus() == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS || again.GetJob().GetStatus() == pipelinev1.JobStatus_JOB_STATUS_PENDING {
		require.Equal(t, refresh.GetJob().GetJobId(), again.GetJob().GetJobId(), "never two crawls of one source")
	}
	b.crawlToEnd(t, refresh.GetJob().GetJobId())
	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)
	require.Equal(t, before, b.embedder.callsOf("marker001"), "unchanged pages are not processed again")
	require.Positive(t, b.embedder.callsOf("marker222"), "the changed page is processed")
	require.Positive(t, b.embedder.callsOf("marker006"), "the new page is processed")

	docs, err := b.content.ListDocuments(tctx(t), &pipelinev1.ListDocumentsRequest{SourceId: src})
	require.NoError(t, err)
	var uris []string
	for _, d := range docs.GetDocuments() {
		uris = append(uris, d.GetUri())
	}
	require.NotContains(t, uris, s.srv.URL+"/p4", "the removed page's document is gone")
	require.Contains(t, uris, s.srv.URL+"/p6")
	hits, err = b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "marker004", SourceIds: []string{src}})
	require.NoError(t, err)
	for _, h := range hits.GetResults() {
		require.NotEqual(t, s.srv.URL+"/p4", h.GetUri(), "the removed page's vectors are gone")
	}

	_, err = b.content.DeleteSource(tctx(t), &pipelinev1.DeleteSourceRequest{SourceId: src})
	require.NoError(t, err)
	require.Zero(t, b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}))
	hits, err = b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "marker003", SourceIds: []string{src}})
	require.NoError(t, err)
	require.Empty(t, hits.GetResults())
}

func TestCancelCrawl(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.CrawlConcurrency = 1 }})
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			fmt.Fprint(w, `<html><body><a href="/slow">slow</a></body></html>`)
			return
		}
		select {
		case <-slow:
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: srv.URL + "/"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: resp.GetJob().GetJobId()})
		require.NoError(t, err)
		return j.GetJob().GetStatus() == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS
	}, waitTimeout, 10*time.Millisecond)
	_, err = b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: resp.GetJob().GetJobId()})
	require.NoError(t, err)
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, seen[len(seen)-1].GetStatus())
	b.requireSourceStatus(t, resp.GetSource().GetSourceId(), pipelinev1.SourceStatus_SOURCE_STATUS_READY)
}

// TestSecondCreateSourceForAURL: creating the same web source again while its crawl runs gets
// the running crawl, never a second one; once it ended, AlreadyExists says to refresh.
func TestSecondCreateSourceForAURL(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	s := newSite(t)
	s.set("/", page(1, ""))
	first, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: s.srv.URL + "/"})
	require.NoError(t, err)
	second, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: s.srv.URL + "/"})
	if err == nil {
		require.Equal(t, first.GetSource().GetSourceId(), second.GetSource().GetSourceId())
		require.Equal(t, first.GetJob().GetJobId(), second.GetJob().GetJobId(), "the running crawl, not a second one")
	} else {
		require.Equal(t, codes.AlreadyExists, status.Code(err), "the first crawl already ended: %v", err)
	}
	b.crawlToEnd(t, first.GetJob().GetJobId())
	_, err = b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: s.srv.URL + "/"})
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), first.GetSource().GetSourceId())
	list, err := b.content.ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSources(), 1)
}
