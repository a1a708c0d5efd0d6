package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl/firecrawlfake"
)

const webhookSecret = "test-webhook-secret-0123456789"

// freeAddr picks a loopback port for the server's HTTP side, so its public URL (the webhook
// address Firecrawl is given) is known before it starts.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func startWithFirecrawl(t *testing.T, site []firecrawlfake.Page, staleAfter time.Duration) (*bundle, *firecrawlfake.Server, string) {
	fake := firecrawlfake.New(t, firecrawlfake.Config{
		APIKey: "fc-test-key", Site: site, PageSize: 2, PollsToComplete: 1000, WebhookSecret: []byte(webhookSecret),
	})
	httpAddr := freeAddr(t)
	b := start(t, options{workers: 1, app: func(a *app.App) {
		if staleAfter > 0 {
			a.Reconciler.CrawlStaleAfter = staleAfter // quiet crawls are polled this soon
		}
	}, cfg: func(c *config.Config) {
		c.HTTPAddr = httpAddr
		c.FirecrawlAPIURL = fake.URL()
		c.FirecrawlAPIKey = "fc-test-key"
		c.FirecrawlWebhookSecret = webhookSecret
		c.PublicURL = "http://" + httpAddr
	}})
	return b, fake, httpAddr
}

func fcSite(n int) []firecrawlfake.Page {
	var site []firecrawlfake.Page
	for i := 1; i <= n; i++ {
		site = append(site, firecrawlfake.Page{
			URL: fmt.Sprintf("https://docs.example.test/p%d", i), Title: fmt.Sprintf("Page %d", i),
			Markdown: fmt.Sprintf("# Page %d\n\nAll about marker%03d.\n", i, 500+i),
		})
	}
	return site
}

func TestFirecrawlWebhookFlow(t *testing.T) {
	t.Parallel()
	b, fake, httpAddr := startWithFirecrawl(t, fcSite(5), 0)
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{
		Url: "https://docs.example.test/", Crawler: pipelinev1.Crawler_CRAWLER_FIRECRAWL,
	})
	require.NoError(t, err)
	src, jobID := resp.GetSource().GetSourceId(), resp.GetJob().GetJobId()
	var crawlID string
	require.Eventually(t, func() bool {
		j, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		crawlID = j.GetJob().GetCrawl().GetExternalId()
		return crawlID != ""
	}, waitTimeout, 10*time.Millisecond)

	// A forged delivery is refused and changes nothing.
	forged := []byte(fmt.Sprintf(`{"success":true,"type":"crawl.failed","id":%q,"error":"forged"}`, crawlID))
	for _, sig := range []string{"", "sha256=00", "sha256=" + fmt.Sprintf("%064x", 1)} {
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/webhooks/firecrawl", bytes.NewReader(forged))
		require.NoError(t, err)
		if sig != "" {
			req.Header.Set("X-Firecrawl-Signature", sig)
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		r.Body.Close()
		require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}

	// The crawl finishes; its completed event arrives twice (a retried delivery).
	require.NoError(t, fake.Complete(crawlID))
	fake.OnNext("crawl.completed", firecrawlfake.FaultDuplicate)
	deliveries, err := fake.Flush(tctx(t))
	require.NoError(t, err)
	for _, d := range deliveries {
		require.Equal(t, http.StatusOK, d.StatusCode, "%s: %v", d.Type, d.Err)
	}
	crawl := b.crawlToEnd(t, jobID)
	require.EqualValues(t, 5, crawl.GetCrawl().GetPagesFetched())
	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)
	hits, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "marker503", SourceIds: []string{src}, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, "https://docs.example.test/p3", hits.GetResults()[0].GetUri())
	procs, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{SourceId: src, Type: pipelinev1.JobType_JOB_TYPE_PROCESS})
	require.NoError(t, err)
	require.Len(t, procs.GetJobs(), 1, "a duplicate completed event starts no second processing job")
}

func TestFirecrawlLostCompletedEventIsRecoveredByPolling(t *testing.T) {
	t.Parallel()
	b, fake, _ := startWithFirecrawl(t, fcSite(3), 300*time.Millisecond)
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{
		Url: "https://docs.example.test/", Crawler: pipelinev1.Crawler_CRAWLER_FIRECRAWL,
	})
	require.NoError(t, err)
	jobID := resp.GetJob().GetJobId()
	var crawlID string
	require.Eventually(t, func() bool {
		j, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		crawlID = j.GetJob().GetCrawl().GetExternalId()
		return crawlID != ""
	}, waitTimeout, 10*time.Millisecond)
	require.NoError(t, fake.Complete(crawlID))
	fake.OnNext("crawl.completed", firecrawlfake.FaultDrop)
	_, err = fake.Flush(tctx(t))
	require.NoError(t, err)

	crawl := b.crawlToEnd(t, jobID)
	require.EqualValues(t, 3, crawl.GetCrawl().GetPagesFetched())
	b.requireSourceStatus(t, resp.GetSource().GetSourceId(), pipelinev1.SourceStatus_SOURCE_STATUS_READY)
}

func TestFirecrawlFailedCrawl(t *testing.T) {
	t.Parallel()
	b, fake, _ := startWithFirecrawl(t, fcSite(2), 0)
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{
		Url: "https://docs.example.test/", Crawler: pipelinev1.Crawler_CRAWLER_FIRECRAWL,
	})
	require.NoError(t, err)
	jobID := resp.GetJob().GetJobId()
	var crawlID string
	require.Eventually(t, func() bool {
		j, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		crawlID = j.GetJob().GetCrawl().GetExternalId()
		return crawlID != ""
	}, waitTimeout, 10*time.Millisecond)
	require.NoError(t, fake.Fail(crawlID, "site unreachable"))
	_, err = fake.Flush(tctx(t))
	require.NoError(t, err)
	seen := b.watchUntilDone(t, jobID)
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_FAILED, last.GetStatus())
	require.Contains(t, last.GetError(), "site unreachable")
	src := b.requireSourceStatus(t, resp.GetSource().GetSourceId(), pipelinev1.SourceStatus_SOURCE_STATUS_FAILED)
	require.Contains(t, src.GetError(), "site unreachable")
}
