package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// The freshness case (issue 7, case 3): one small document ingested through the API
// (IngestDocuments, one document, one job) until a search through the API (SearchService.Search
// for a word only that document holds) returns its chunk, over and over, while a background
// load keeps big jobs running: freshLoadJobs jobs of freshLoadDocs documents of ~5 KB each are
// always active (a new one is ingested as soon as one finishes, the same documents with new
// content, so each is processed again). The server and one worker pool run in this process as
// in `pipeline dev`, with the default settings (5 slots, express lane on); BENCH_FRESH_EXPRESS=0
// turns the express lane off, to measure without it.
//
// Floor: the same document through the same chunker, embedder and store (the server's own)
// called directly, then searched in the store, under the same load.
const (
	freshProbes      = 25
	freshProbesShort = 8
	freshLoadDocs    = 300
	freshLoadJobs    = 3
	freshTimeout     = 30 * time.Second // a probe not searchable by then is lost
	freshPoll        = time.Millisecond
)

func init() {
	ms := func(name string) Metric { return Metric{Name: name + " ms", Format: "%.1f", LowerBetter: true} }
	register(&Case{
		Name:    "fresh",
		About:   fmt.Sprintf("one small document from IngestDocuments to a Search that returns it, under a load of %d big jobs, vs chunk-embed-upsert-search in process", freshLoadJobs),
		Primary: ms("p99"),
		Summary: []Metric{ms("p50"), ms("p99")},
		Columns: []Metric{ms("p50"), ms("p99"), ms("max"), {Name: "probes", Format: "%.0f"}, {Name: "load jobs done", Format: "%.0f"}},
		Prepare: prepareFresh,
	})
}

func prepareFresh(ctx context.Context, env *Env) (p *Prepared, err error) {
	probes := freshProbes
	if env.Short {
		probes = freshProbesShort
	}
	express := os.Getenv("BENCH_FRESH_EXPRESS") != "0"
	srv, err := startServer(ctx, env.Dir, func(c *config.Config) {
		if !express {
			c.ExpressMaxDocuments = 0
		}
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	var admin *pgxpool.Pool
	closeAll := func() {
		cancel()
		bg.Wait()
		if admin != nil {
			admin.Close()
		}
		srv.Close()
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if admin, err = pgxpool.New(ctx, benchDatabaseURL()); err != nil {
		return nil, err
	}
	content := pipelinev1.NewContentServiceClient(srv.Conn)
	newSource := func(name string) (string, error) {
		src, err := content.CreateSource(ctx, &pipelinev1.CreateSourceRequest{Name: name})
		return src.GetSource().GetSourceId(), err
	}
	loadSrc, err := newSource("bench-fresh-load")
	if err != nil {
		return nil, err
	}
	probeSrc, err := newSource("bench-fresh-probes")
	if err != nil {
		return nil, err
	}
	workerErr := make(chan error, 1)
	bg.Go(func() { workerErr <- srv.app.RunWorkers(runCtx, srv.Addr, "") })
	ld := &freshLoad{content: content, admin: admin, schema: srv.schema, sourceID: loadSrc,
		docs: e2eCorpus(freshLoadDocs, e2eDocBytes, srv.app.Chunker), errc: make(chan error, 1)}
	bg.Go(func() { ld.run(runCtx) })
	// The load is on once its jobs are being worked on.
	if err := ld.awaitStarted(ctx, workerErr); err != nil {
		return nil, err
	}
	env.Logf("fresh: background load running (%d jobs of %d documents at a time)", freshLoadJobs, freshLoadDocs)

	search := pipelinev1.NewSearchServiceClient(srv.Conn)
	rng := rand.New(rand.NewPCG(3, 5))
	var mu sync.Mutex // one probe at a time, whichever subject
	word := func() string {
		b := make([]byte, 14)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return "zq" + string(b)
	}
	n := 0
	project := freshSubject("project IngestDocuments -> Search", true, probes, &mu, ld, func(ctx context.Context) (time.Duration, error) {
		n++
		w := word()
		t0 := time.Now()
		resp, err := content.IngestDocuments(ctx, &pipelinev1.IngestDocumentsRequest{SourceId: probeSrc, Documents: []*pipelinev1.DocumentInput{{
			Uri: fmt.Sprintf("probe/%d.md", n), Content: fmt.Sprintf("# Probe %d\n\nThe freshness probe word is %s.\n", n, w),
		}}})
		if err != nil {
			return 0, fmt.Errorf("ingest probe: %w", err)
		}
		docID := resp.GetDocuments()[0].GetDocumentId()
		for {
			r, err := search.Search(ctx, &pipelinev1.SearchRequest{Query: w, SourceIds: []string{probeSrc}, TopK: 5})
			if err != nil {
				return 0, fmt.Errorf("search: %w", err)
			}
			for _, hit := range r.GetResults() {
				if hit.GetDocumentId() == docID {
					return time.Since(t0), nil
				}
			}
			if err := freshWait(ctx, t0, w); err != nil {
				return 0, err
			}
		}
	})
	store, ch, emb := srv.Deps.Vectors, srv.app.Chunker, srv.app.Embedder
	floor := freshSubject("floor: chunk, embed, upsert, search in process", false, probes, &mu, ld, func(ctx context.Context) (time.Duration, error) {
		n++
		w := word()
		docID := fmt.Sprintf("floor-%d", n)
		t0 := time.Now()
		if _, err := indexDirect(ctx, ch, emb, store, srv.app.Cfg.EmbedBatchSize, "bench-fresh-floor", docID, "floor.md",
			fmt.Sprintf("# Probe %d\n\nThe freshness probe word is %s.\n", n, w)); err != nil {
			return 0, err
		}
		q, err := emb.Embed(ctx, []string{w})
		if err != nil {
			return 0, err
		}
		hits, err := store.Search(ctx, q[0], 5, vector.Filter{SourceIDs: []string{"bench-fresh-floor"}})
		if err != nil {
			return 0, err
		}
		if !slices.ContainsFunc(hits, func(h vector.Hit) bool { return h.DocumentID == docID }) {
			return 0, correctness("floor: the store did not return %s right after its upsert", docID)
		}
		return time.Since(t0), nil
	})
	lane := "on"
	if !express {
		lane = "off (BENCH_FRESH_EXPRESS=0)"
	}
	return &Prepared{
		Input: fmt.Sprintf("%d probes per run, each a one-document job; background: %d jobs of %d documents (~%d bytes) always active; express lane %s",
			probes, freshLoadJobs, freshLoadDocs, e2eDocBytes, lane),
		Subjects: []*Subject{project, floor},
		Compare:  [][2]string{{project.Name, floor.Name}},
		Notes: []string{
			"latency: from just before IngestDocuments is called to the Search answer that holds the probe's chunk (searched every 1 ms, for a word only that probe holds, in the probes' source); lower is better, ratio = floor / project",
			"a real server and one worker pool (app.RunWorkers, default settings: 5 slots, 1 of them for the express lane unless it is off) in this process, on their own Postgres schema and Redis prefix; the load and the probes share them",
			"floor: the probe through the same chunker, embedder and embedded store called directly, then a store search, under the same load; a probe not searchable within 30 s fails the case",
		},
		Close: closeAll,
	}, nil
}

func freshWait(ctx context.Context, t0 time.Time, word string) error {
	if time.Since(t0) > freshTimeout {
		return correctness("the probe holding %q was not searchable within %s", word, freshTimeout)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(freshPoll):
		return nil
	}
}

// freshSubject measures probes one after another, each after a random pause (0-20 ms) so that
// they do not fall into step with the load.
func freshSubject(name string, project bool, probes int, mu *sync.Mutex, ld *freshLoad, probe func(context.Context) (time.Duration, error)) *Subject {
	sub := &Subject{Name: name, Project: project}
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		mu.Lock()
		defer mu.Unlock()
		done0 := ld.finished()
		lat := make([]float64, 0, probes)
		t0 := time.Now()
		for range probes {
			if err := ld.err(); err != nil {
				return nil, err
			}
			d, err := probe(ctx)
			if err != nil {
				return nil, err
			}
			lat = append(lat, float64(d.Microseconds())/1e3)
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		}
		s := latencySample(lat, time.Since(t0), "probes")
		s["load jobs done"] = float64(ld.finished() - done0)
		return s, nil
	}
	return sub
}

// freshLoad keeps freshLoadJobs big jobs active.
type freshLoad struct {
	content  pipelinev1.ContentServiceClient
	admin    *pgxpool.Pool
	schema   string
	sourceID string
	docs     []e2eDoc
	errc     chan error

	mu      sync.Mutex
	created int
	active  int
}

func (l *freshLoad) finished() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created - l.active
}

func (l *freshLoad) err() error {
	select {
	case err := <-l.errc:
		l.errc <- err
		return fmt.Errorf("background load: %w", err)
	default:
		return nil
	}
}

func (l *freshLoad) run(ctx context.Context) {
	q := "SELECT count(*) FROM " + l.schema + ".jobs WHERE source_id = $1 AND status IN ('pending', 'in_progress')"
	for gen := 0; ctx.Err() == nil; {
		var active int
		if err := l.admin.QueryRow(ctx, q, l.sourceID).Scan(&active); err != nil {
			if ctx.Err() == nil {
				l.errc <- err
			}
			return
		}
		l.mu.Lock()
		l.active = active
		l.mu.Unlock()
		if active < freshLoadJobs {
			gen++
			in := make([]*pipelinev1.DocumentInput, len(l.docs))
			for i, d := range l.docs {
				// New content each time, so that every document is processed again.
				in[i] = &pipelinev1.DocumentInput{Uri: d.uri, Content: fmt.Sprintf("%s\n\nGeneration %d.\n", d.text, gen)}
			}
			if _, err := l.content.IngestDocuments(ctx, &pipelinev1.IngestDocumentsRequest{SourceId: l.sourceID, Documents: in}); err != nil {
				if ctx.Err() == nil {
					l.errc <- err
				}
				return
			}
			l.mu.Lock()
			l.created++
			l.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// awaitStarted waits until the load has its jobs and one of them is being worked on.
func (l *freshLoad) awaitStarted(ctx context.Context, workerErr <-chan error) error {
	q := "SELECT count(*) FROM " + l.schema + ".jobs WHERE source_id = $1 AND status = 'in_progress'"
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := l.err(); err != nil {
			return err
		}
		select {
		case err := <-workerErr:
			return fmt.Errorf("worker: %v", err)
		default:
		}
		var running int
		if err := l.admin.QueryRow(ctx, q, l.sourceID).Scan(&running); err != nil {
			return err
		}
		l.mu.Lock()
		created := l.created
		l.mu.Unlock()
		if running > 0 && created >= freshLoadJobs {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the background load did not start within a minute")
}
