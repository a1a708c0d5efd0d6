package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/chunk"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
)

// The end-to-end case (issue 7, case 2): N documents of about 5 KB through the API
// (ContentService.IngestDocuments, e2eDocsPerCall a call, so one job of one batch each) into the
// embedded vector store with the hash embedder, processed by one or two in-process worker
// instances (app.RunWorkers, as `pipeline dev` runs them) of one slot each
// (docs/decisions/0018). A run lasts from the first ingest call to the moment every job is
// finished in Postgres. The ceiling is the same stages without the service: the same chunker,
// embedder and an embedded store of its own, the documents held in memory, no API, queue or
// Postgres, in as many pipelines as there are workers, each overlapping its stages as a worker
// does (a first stage chunks and embeds, a second stores what is ready), so that it stays an
// upper bound for the worker's design.
//
// Counted per document: the process's CPU time (server, workers and this client: they share
// the process), the statements the service's Postgres pool ran (a pgx tracer: BEGIN and COMMIT
// count, as does every statement of a batch or a COPY) and the commands its Redis clients sent
// (go-redis hooks on the service's client and taskq's, so other users of the shared Redis do not
// count). After each run the case checks that every job completed without a failed document
// and that the store holds exactly the chunks the chunker makes of every document, then
// deletes the run's source.
const (
	e2eDocs        = 10000
	e2eDocsShort   = 1000
	e2eDocBytes    = 5000
	e2eDocsPerCall = 100
	e2eIngesters   = 2 // IngestDocuments calls in flight
	e2eRunTimeout  = 10 * time.Minute
)

func init() {
	docsPerS := Metric{Name: "docs/s", Format: "%.0f"}
	register(&Case{
		Name:    "e2e",
		About:   "documents of ~5 KB through the API into the embedded store (hash embedder), 1 and 2 workers, vs the same stages in 1 and 2 pipelines without the service (ceiling)",
		Primary: docsPerS,
		Columns: []Metric{docsPerS, {Name: "chunks/s", Format: "%.0f"}, {Name: "CPU ms/doc", Format: "%.2f"},
			{Name: e2ePGCPUPerDoc, Format: "%.2f"}, {Name: e2eRedisCPUPerDoc, Format: "%.2f"},
			{Name: "PG stmts/doc", Format: "%.2f"}, {Name: "Redis cmds/doc", Format: "%.2f"},
			{Name: "ingest docs/s", Format: "%.0f"}, {Name: "docs", Format: "%.0f"}, {Name: "chunks", Format: "%.0f"}},
		Prepare: prepareE2E,
	})
}

// The CPU the machine's Postgres and Redis processes used over a run, per document (proccpu.go);
// this process's is "CPU ms/doc".
const (
	e2ePGCPUPerDoc    = "PG CPU ms/doc"
	e2eRedisCPUPerDoc = "Redis CPU ms/doc"
)

var e2eServiceCPUColumns = cpuColumns{postgres: e2ePGCPUPerDoc, redis: e2eRedisCPUPerDoc}

// counters counts what the service sends to Postgres and Redis.
type counters struct {
	pg, redis atomic.Int64
	// kinds counts statements by kind (statementKind) when not nil (-v).
	kinds *sync.Map
}

func (c *counters) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.pg.Add(1)
	c.kind(d.SQL)
	return ctx
}

// kind counts a statement by its kind, with -v.
func (c *counters) kind(sql string) {
	if c.kinds != nil {
		n, _ := c.kinds.LoadOrStore(statementKind(sql), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
}

// statementKind names a statement by its first line that is not a comment, cut to 60 bytes.
func statementKind(sql string) string {
	for line := range strings.Lines(sql) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "--") {
			return line[:min(len(line), 60)]
		}
	}
	return "?"
}

// kindCounts returns the statements counted by kind so far.
func (c *counters) kindCounts() map[string]int64 {
	out := map[string]int64{}
	if c.kinds != nil {
		c.kinds.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	}
	return out
}
func (*counters) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *counters) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *counters) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.pg.Add(1)
	c.kind(d.SQL)
}
func (*counters) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (c *counters) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.pg.Add(1)
	return ctx
}
func (*counters) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

func (c *counters) options() app.Options {
	return app.Options{PGTracer: c, RedisCommands: func(n int) { c.redis.Add(int64(n)) }}
}

// e2eDoc is one generated document and how many chunks the chunker makes of it.
type e2eDoc struct {
	uri, text string
	chunks    int
}

// e2eWords is the vocabulary of the generated documents: made-up words of 3 to 9 letters.
func e2eWords(rng *rand.Rand, n int) []string {
	words := make([]string, n)
	for i := range words {
		b := make([]byte, 3+rng.IntN(7))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}

// e2eCorpus makes n Markdown documents of about size bytes: a title, sections every ~1.5 KB,
// paragraphs of sentences drawn from a fixed vocabulary (seeded, so every harness run measures
// the same text).
func e2eCorpus(n, size int, ch *chunk.Chunker) []e2eDoc {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	words := e2eWords(rng, 4000)
	docs := make([]e2eDoc, n)
	var b strings.Builder
	for i := range docs {
		b.Reset()
		fmt.Fprintf(&b, "# Document %d\n\n", i)
		section := 0
		for b.Len() < size {
			if b.Len() > (section+1)*1500 {
				section++
				fmt.Fprintf(&b, "## Section %d %s\n\n", section, words[rng.IntN(len(words))])
			}
			for s := 3 + rng.IntN(4); s > 0; s-- {
				for w := 6 + rng.IntN(10); w > 0; w-- {
					b.WriteString(words[rng.IntN(len(words))])
					b.WriteByte(' ')
				}
				b.WriteString("end. ")
			}
			b.WriteString("\n\n")
		}
		docs[i] = e2eDoc{uri: fmt.Sprintf("e2e/%05d.md", i), text: b.String()}
		docs[i].chunks = len(ch.Split(docs[i].text))
	}
	return docs
}

func prepareE2E(ctx context.Context, env *Env) (p *Prepared, err error) {
	n := e2eDocs
	if env.Short {
		n = e2eDocsShort
	}
	cnt := &counters{}
	if env.Options.Verbose {
		cnt.kinds = new(sync.Map)
	}
	srv, err := startServerWith(ctx, env.Dir, func(c *config.Config) {
		c.MaxConcurrentJobs = 1 // one slot per worker instance: see docs/decisions/0018
	}, cnt.options())
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			srv.Close()
		}
	}()
	a := srv.app
	docs := e2eCorpus(n, e2eDocBytes, a.Chunker)
	totalChunks, totalBytes := 0, 0
	for _, d := range docs {
		totalChunks += d.chunks
		totalBytes += len(d.text)
	}
	env.Logf("e2e: %d documents, %.1f MB, %d chunks", n, float64(totalBytes)/1e6, totalChunks)
	admin, err := pgx.Connect(ctx, benchDatabaseURL())
	if err != nil {
		return nil, err
	}
	e := &e2eRunner{srv: srv, cnt: cnt, docs: docs, chunks: totalChunks, admin: admin, env: env}
	var subjects []*Subject
	for _, w := range []int{1, 2} {
		subjects = append(subjects, e.projectSubject(w), e.ceilingSubject(w, a.Chunker, a.Embedder, a.Cfg.EmbedBatchSize))
	}
	return &Prepared{
		Input: fmt.Sprintf("%d generated Markdown documents of ~%d bytes (%.1f MB, %d chunks of at most %d tokens), %d per IngestDocuments call, %d calls in flight",
			n, e2eDocBytes, float64(totalBytes)/1e6, totalChunks, a.Cfg.ChunkMaxTokens, e2eDocsPerCall, e2eIngesters),
		Subjects: subjects,
		Compare: [][2]string{
			{subjects[0].Name, subjects[1].Name}, {subjects[2].Name, subjects[3].Name}, {subjects[2].Name, subjects[0].Name},
		},
		Notes: []string{
			"project: a real server in this process on its own Postgres schema and Redis prefix; documents go in over gRPC, each call one job of one batch; 1 or 2 worker instances (app.RunWorkers, as `pipeline dev`), one slot each; a run ends when every job is finished in Postgres",
			fmt.Sprintf("ceiling: the same chunker, hash embedder and an embedded store of its own over documents held in memory (no API, queue or Postgres), in 1 or 2 pipelines that overlap the stages as the worker does: a first stage chunks and embeds a document while a second stores the ones ready before it (hand-off of %d, up to %d stored together, one upsert each made at once as one write group); the last row compares 2 workers with 1 (target 1.7)", e2eCeilingHandOff, e2eCeilingGroup),
			"CPU ms/doc: the whole process's CPU time (server, workers and the ingesting client; not Postgres's or Redis's) per document; PG and Redis CPU ms/doc: the machine's Postgres processes' and Redis's over the run (from /proc, 10 ms ticks; for the project they include the bench's own poll for the jobs' end, a count of the jobs every 10 ms), near 0 for the ceiling; PG stmts/doc: statements of the service's pool (pgx tracer; BEGIN/COMMIT included); Redis cmds/doc: commands of the service's two Redis clients (go-redis hooks), idle polling included",
			"checked after every run: every job completed with no failed document, and the store holds exactly the chunker's number of chunks for every document",
		},
		Close: func() { _ = admin.Close(context.Background()); srv.Close() },
	}, nil
}

type e2eRunner struct {
	srv    *liveServer
	cnt    *counters
	docs   []e2eDoc
	chunks int
	admin  *pgx.Conn
	env    *Env
	runs   atomic.Int64
}

// e2eSample turns a run's counts into the case's metrics.
func e2eSample(docs, chunks int, wall, cpu time.Duration, pg, redis int64) Sample {
	return Sample{
		"docs/s": float64(docs) / wall.Seconds(), "chunks/s": float64(chunks) / wall.Seconds(),
		"CPU ms/doc":   float64(cpu.Microseconds()) / 1e3 / float64(docs),
		"PG stmts/doc": float64(pg) / float64(docs), "Redis cmds/doc": float64(redis) / float64(docs),
		"docs": float64(docs), "chunks": float64(chunks),
	}
}

func (e *e2eRunner) projectSubject(workers int) *Subject {
	sub := &Subject{Name: fmt.Sprintf("project, %d worker(s)", workers), Project: true}
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		return e.runProject(ctx, workers)
	}
	return sub
}

func (e *e2eRunner) runProject(ctx context.Context, workers int) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, e2eRunTimeout)
	defer cancel()
	content := pipelinev1.NewContentServiceClient(e.srv.Conn)
	src, err := content.CreateSource(ctx, &pipelinev1.CreateSourceRequest{Name: fmt.Sprintf("bench-e2e-%d", e.runs.Add(1))})
	if err != nil {
		return nil, fmt.Errorf("create source: %w", err)
	}
	sourceID := src.GetSource().GetSourceId()
	defer func() {
		// Keep the store and the tables at the size of one run.
		if _, err := content.DeleteSource(context.WithoutCancel(ctx), &pipelinev1.DeleteSourceRequest{SourceId: sourceID}); err != nil {
			e.env.Logf("e2e: delete source %s: %v", sourceID, err)
		}
		// Vacuumed now, outside the timed window, rather than by autovacuum during the next
		// subject (the ceiling's run as often as the project's). It leaves the tables as a
		// deleted source leaves them once autovacuum has been by: empty by their statistics,
		// which a statement's plan made then must survive (content's keyed_reads.sql).
		if _, err := e.srv.Deps.Pool.Exec(context.WithoutCancel(ctx), "VACUUM documents, document_index_state, jobs, job_documents, job_batches",
			pgx.QueryExecModeSimpleProtocol); err != nil {
			e.env.Logf("e2e: vacuum: %v", err)
		}
	}()

	workCtx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	workerErrs := make([]error, workers)
	for i := range workers {
		wg.Go(func() { workerErrs[i] = e.srv.app.RunWorkers(workCtx, e.srv.Addr, "") })
	}
	stop := func() { stopWorkers(); wg.Wait() }
	defer stop()

	pg0, redis0, cpu0, kinds0, services0 := e.cnt.pg.Load(), e.cnt.redis.Load(), cpuTime(), e.cnt.kindCounts(), readCPU()
	t0 := time.Now()
	jobIDs, err := e.ingest(ctx, content, sourceID)
	if err != nil {
		return nil, err
	}
	ingestWall := time.Since(t0)
	if err := e.awaitJobs(ctx, len(jobIDs)); err != nil {
		return nil, err
	}
	wall, cpu, services := time.Since(t0), cpuTime()-cpu0, readCPU()
	pg, redis := e.cnt.pg.Load()-pg0, e.cnt.redis.Load()-redis0
	e.logKinds(workers, kinds0)
	stop()
	for _, err := range workerErrs {
		if err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
	}
	if err := e.check(ctx, jobIDs); err != nil {
		return nil, err
	}
	s := e2eSample(len(e.docs), e.chunks, wall, cpu, pg, redis)
	s["ingest docs/s"] = float64(len(e.docs)) / ingestWall.Seconds()
	services0.per(services, len(e.docs), e2eServiceCPUColumns, s)
	return s, nil
}

// logKinds reports (with -v) the statements per document of the run by kind, most first.
func (e *e2eRunner) logKinds(workers int, before map[string]int64) {
	if e.cnt.kinds == nil {
		return
	}
	type kind struct {
		name string
		n    int64
	}
	var list []kind
	for name, n := range e.cnt.kindCounts() {
		if n -= before[name]; n > 0 {
			list = append(list, kind{name, n})
		}
	}
	slices.SortFunc(list, func(a, b kind) int { return cmp.Compare(b.n, a.n) })
	var b strings.Builder
	for _, k := range list {
		fmt.Fprintf(&b, "\n  %6.3f  %s", float64(k.n)/float64(len(e.docs)), k.name)
	}
	e.env.Logf("e2e: %d worker(s): Postgres statements per document by kind:%s", workers, b.String())
}

// ingest sends the documents, e2eDocsPerCall a call from e2eIngesters goroutines, and returns
// the jobs made.
func (e *e2eRunner) ingest(ctx context.Context, content pipelinev1.ContentServiceClient, sourceID string) ([]string, error) {
	calls := (len(e.docs) + e2eDocsPerCall - 1) / e2eDocsPerCall
	jobIDs := make([]string, calls)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range e2eIngesters {
		g.Go(func() error {
			for c := int(next.Add(1) - 1); c < calls; c = int(next.Add(1) - 1) {
				part := e.docs[c*e2eDocsPerCall : min((c+1)*e2eDocsPerCall, len(e.docs))]
				in := make([]*pipelinev1.DocumentInput, len(part))
				for i, d := range part {
					in[i] = &pipelinev1.DocumentInput{Uri: d.uri, Content: d.text, ContentType: "text/markdown"}
				}
				resp, err := content.IngestDocuments(gctx, &pipelinev1.IngestDocumentsRequest{SourceId: sourceID, Documents: in})
				if err != nil {
					return fmt.Errorf("ingest call %d: %w", c, err)
				}
				jobIDs[c] = resp.GetJob().GetJobId()
			}
			return nil
		})
	}
	return jobIDs, g.Wait()
}

// awaitJobs polls, on a connection of the harness's own (not counted), until want jobs of the
// server's schema are finished.
func (e *e2eRunner) awaitJobs(ctx context.Context, want int) error {
	return awaitFinishedJobs(ctx, e.admin, e.srv.schema, want, 10*time.Millisecond)
}

// awaitFinishedJobs polls until at least want jobs in schema are finished and none is active.
func awaitFinishedJobs(ctx context.Context, conn *pgx.Conn, schema string, want int, every time.Duration) error {
	q := "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), count(*) FILTER (WHERE status IN ('pending', 'in_progress')) FROM " + schema + ".jobs WHERE type = 'process'"
	for {
		var done, active int
		if err := conn.QueryRow(ctx, q).Scan(&done, &active); err != nil {
			return fmt.Errorf("poll jobs: %w", err)
		}
		if done >= want && active == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs finished, %d active: %w", done, want, active, ctx.Err())
		case <-time.After(every):
		}
	}
}

// check verifies the run: each job completed with all its documents succeeded, and the store
// holds the chunker's number of chunks for each document.
func (e *e2eRunner) check(ctx context.Context, jobIDs []string) error {
	jobsClient := pipelinev1.NewJobServiceClient(e.srv.Conn)
	content := pipelinev1.NewContentServiceClient(e.srv.Conn)
	want := map[string]int{}
	for _, d := range e.docs {
		want[d.uri] = d.chunks
	}
	stored, processed := 0, int64(0)
	for _, id := range jobIDs {
		resp, err := jobsClient.GetJob(ctx, &pipelinev1.GetJobRequest{JobId: id})
		if err != nil {
			return err
		}
		j := resp.GetJob()
		pr := j.GetProcessing()
		if j.GetStatus() != pipelinev1.JobStatus_JOB_STATUS_COMPLETED || pr.GetErrorCount() != 0 || pr.GetProcessedCount() != pr.GetDocumentCount() {
			return correctness("job %s is %v with %d of %d documents processed, %d failed", id, j.GetStatus(), pr.GetProcessedCount(), pr.GetDocumentCount(), pr.GetErrorCount())
		}
		processed += pr.GetProcessedCount()
	}
	if processed != int64(len(e.docs)) {
		return correctness("%d documents processed, want %d", processed, len(e.docs))
	}
	// Every document of the source, by id, against the store.
	src := ""
	if len(jobIDs) > 0 {
		resp, err := jobsClient.GetJob(ctx, &pipelinev1.GetJobRequest{JobId: jobIDs[0]})
		if err != nil {
			return err
		}
		src = resp.GetJob().GetSourceId()
	}
	seen := 0
	token := ""
	for {
		page, err := content.ListDocuments(ctx, &pipelinev1.ListDocumentsRequest{SourceId: src, PageSize: 1000, PageToken: token})
		if err != nil {
			return err
		}
		for _, d := range page.GetDocuments() {
			n, err := e.srv.Deps.Vectors.Count(ctx, vector.Filter{DocumentIDs: []string{d.GetDocumentId()}})
			if err != nil {
				return err
			}
			w, ok := want[d.GetUri()]
			if !ok || n != w {
				return correctness("document %s (%s) has %d chunks in the store, want %d", d.GetDocumentId(), d.GetUri(), n, w)
			}
			stored += n
			seen++
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	total, err := e.srv.Deps.Vectors.Count(ctx, vector.Filter{SourceIDs: []string{src}})
	if err != nil {
		return err
	}
	if seen != len(e.docs) || stored != e.chunks || total != e.chunks {
		return correctness("%d documents with %d chunks (%d in the source), want %d with %d", seen, stored, total, len(e.docs), e.chunks)
	}
	return nil
}

// The ceiling's pipelines are shaped as a worker's batch (worker.go: the hand-off channel and
// commitGroup): a first stage that chunks and embeds, a second that stores what is ready.
// The worker's chunk budget for the hand-off (handOffChunks) is left out: this corpus's
// documents never reach it (64 of them have about 440 chunks).
const (
	e2eCeilingHandOff = 63 // prepared documents waiting for the second stage, besides the one in hand (worker.go: handOff)
	e2eCeilingGroup   = 32 // most documents the second stage stores together (worker.go: commitGroup)
)

// ceilingSubject runs conc pipelines of the worker's two stages into a fresh embedded store,
// over documents held in memory.
func (e *e2eRunner) ceilingSubject(conc int, ch *chunk.Chunker, emb embed.Embedder, embedBatch int) *Subject {
	sub := &Subject{Name: fmt.Sprintf("ceiling, %d pipeline(s)", conc)}
	sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
		dir := fmt.Sprintf("%s/ceiling-%d", e.env.Dir, e.runs.Add(1))
		store, err := embedded.Open(dir, emb.Dimension())
		if err != nil {
			return nil, err
		}
		defer store.Close()
		counts := make([]int, len(e.docs))
		held := make([]string, len(e.docs)) // the in-memory document sink
		cpu0, services0 := cpuTime(), readCPU()
		t0 := time.Now()
		var next atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		for range conc {
			tasks := make(chan ceilingDoc, e2eCeilingHandOff)
			g.Go(func() error {
				defer close(tasks)
				for i := int(next.Add(1) - 1); i < len(e.docs); i = int(next.Add(1) - 1) {
					held[i] = e.docs[i].text
					records, err := prepareDirect(gctx, ch, emb, embedBatch, "ceiling", fmt.Sprintf("doc-%d", i), e.docs[i].uri, held[i])
					if err != nil {
						return err
					}
					select {
					case tasks <- ceilingDoc{i, records}:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				return nil
			})
			g.Go(func() error { return storeReady(gctx, store, tasks, counts) })
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		wall, cpu, services := time.Since(t0), cpuTime()-cpu0, readCPU()
		stored := 0
		for i, d := range e.docs {
			if counts[i] != d.chunks {
				return nil, correctness("ceiling: document %d has %d chunks, want %d", i, counts[i], d.chunks)
			}
			stored += counts[i]
		}
		if total, err := store.Count(ctx, vector.Filter{SourceIDs: []string{"ceiling"}}); err != nil || total != e.chunks || stored != e.chunks {
			return nil, correctness("ceiling: %d chunks stored (%v), want %d", total, err, e.chunks)
		}
		sample := e2eSample(len(e.docs), e.chunks, wall, cpu, 0, 0)
		services0.per(services, len(e.docs), e2eServiceCPUColumns, sample)
		return sample, nil
	}
	return sub
}

// ceilingDoc is a document between the ceiling's two stages: its index and its embedded chunks.
type ceilingDoc struct {
	i       int
	records []vector.Record
}

// storeReady is a ceiling pipeline's second stage: it takes what is ready (the first document it
// waits for, up to e2eCeilingGroup with it) and stores it as the worker does, one upsert per
// document made at once as one vector.WriteGroup, so the embedded store's group commit makes them
// durable with one sync. counts[i]
// is set to the chunks stored of document i.
func storeReady(ctx context.Context, store vector.Store, tasks <-chan ceilingDoc, counts []int) error {
	group := make([]ceilingDoc, 0, e2eCeilingGroup)
	for t := range tasks {
		group = append(group[:0], t)
	more:
		for len(group) < e2eCeilingGroup {
			select {
			case t, ok := <-tasks:
				if !ok {
					break more
				}
				group = append(group, t)
			default:
				break more
			}
		}
		upserts := 0
		for _, t := range group {
			if len(t.records) > 0 {
				upserts++
			}
		}
		wg := vector.NewWriteGroup(upserts)
		var g errgroup.Group
		for _, t := range group {
			if len(t.records) > 0 {
				g.Go(func() error { return store.Upsert(wg.Context(ctx), t.records) })
			}
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, t := range group {
			counts[t.i] = len(t.records)
		}
	}
	return nil
}

// indexDirect is the worker's stages for one document without the service, one after the
// other: chunk, embed in batches (prepareDirect), upsert. It returns the number of chunks stored.
func indexDirect(ctx context.Context, ch *chunk.Chunker, emb embed.Embedder, store vector.Store, embedBatch int, sourceID, docID, uri, text string) (int, error) {
	records, err := prepareDirect(ctx, ch, emb, embedBatch, sourceID, docID, uri, text)
	if err != nil {
		return 0, err
	}
	if len(records) > 0 {
		if err := store.Upsert(ctx, records); err != nil {
			return 0, err
		}
	}
	return len(records), nil
}

// prepareDirect is the worker's first stage for one document without the service: chunk, embed
// in batches. It returns the records to store.
func prepareDirect(ctx context.Context, ch *chunk.Chunker, emb embed.Embedder, embedBatch int, sourceID, docID, uri, text string) ([]vector.Record, error) {
	chunks := ch.Split(text)
	records := make([]vector.Record, len(chunks))
	for i, c := range chunks {
		records[i] = vector.Record{
			ID: vector.ChunkID(docID, i), SourceID: sourceID, DocumentID: docID, ChunkIndex: i, Text: c.Text,
			Title: uri, URI: uri, HeadingPath: strings.Join(c.HeadingPath, " > "),
			StartOffset: int64(c.Start), EndOffset: int64(c.End),
		}
	}
	for start := 0; start < len(chunks); start += embedBatch {
		end := min(start+embedBatch, len(chunks))
		texts := make([]string, 0, end-start)
		for _, c := range chunks[start:end] {
			texts = append(texts, c.Text)
		}
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			return nil, err
		}
		for i, v := range vecs {
			records[start+i].Vector = v
		}
	}
	return records, nil
}
