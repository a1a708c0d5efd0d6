package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// The API case: GetJob over gRPC and over the REST gateway, on the same server, by the same Go
// load loop at the same concurrency. The REST side is the "project" of the comparison and gRPC
// its peer, so the summary's ratio is REST / gRPC (QPS) and gRPC / REST (p99, lower is better):
// above 1, REST does better.
const apiConcurrency = 16

// apiCPUPerCall is the process's CPU time per call: the callers' side and the server's, both in
// this process (Postgres's is not in it). Less diluted by a busy machine than calls/s.
const apiCPUPerCall = "CPU µs/call"

func init() {
	ms := func(name string) Metric { return Metric{Name: name + " ms", Format: "%.2f", LowerBetter: true} }
	qps := Metric{Name: "calls/s", Format: "%.0f"}
	register(&Case{
		Name:    "api",
		About:   fmt.Sprintf("GetJob calls/s and latency over REST (gateway) vs gRPC, %d concurrent callers, same server", apiConcurrency),
		Primary: qps,
		Summary: []Metric{qps, ms("p99")},
		Columns: []Metric{qps, ms("p50"), ms("p99"), ms("max"), {Name: apiCPUPerCall, Format: "%.0f", LowerBetter: true}, {Name: "calls", Format: "%.0f"}},
		Prepare: prepareAPI,
	})
}

// loadLoop makes total calls from conc goroutines at once and returns each call's latency in
// milliseconds and the wall time of all.
func loadLoop(ctx context.Context, conc, total int, call func(ctx context.Context) error) ([]float64, time.Duration, error) {
	lat := make([][]float64, conc)
	var left atomic.Int64
	left.Store(int64(total))
	g, gctx := errgroup.WithContext(ctx)
	t0 := time.Now()
	for w := range conc {
		g.Go(func() error {
			for gctx.Err() == nil && left.Add(-1) >= 0 {
				t := time.Now()
				if err := call(gctx); err != nil {
					return err
				}
				lat[w] = append(lat[w], float64(time.Since(t).Nanoseconds())/1e6)
			}
			return nil
		})
	}
	err := g.Wait()
	return slices.Concat(lat...), time.Since(t0), err
}

func prepareAPI(ctx context.Context, env *Env) (p *Prepared, err error) {
	total := 20000
	if env.Short {
		total = 3000
	}
	srv, err := startServer(ctx, env.Dir, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			srv.Close()
		}
	}()
	content := pipelinev1.NewContentServiceClient(srv.Conn)
	src, err := content.CreateSource(ctx, &pipelinev1.CreateSourceRequest{Name: "bench-api"})
	if err != nil {
		return nil, fmt.Errorf("create source: %w", err)
	}
	docs := make([]*pipelinev1.DocumentInput, 10)
	for i := range docs {
		docs[i] = &pipelinev1.DocumentInput{Uri: fmt.Sprintf("api/%d.md", i), Content: fmt.Sprintf("# Page %d\n\nSome text.", i)}
	}
	ing, err := content.IngestDocuments(ctx, &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSource().GetSourceId(), Documents: docs})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	// No worker runs, so the job stays as it is: every answer must be this one.
	want := ing.GetJob()
	check := func(via string, got *pipelinev1.Job) error {
		if got.GetJobId() != want.GetJobId() || got.GetVersion() != want.GetVersion() || got.GetProcessing().GetDocumentCount() != int64(len(docs)) {
			return correctness("GetJob over %s answered job %s version %d with %d documents; want %s version %d with %d",
				via, got.GetJobId(), got.GetVersion(), got.GetProcessing().GetDocumentCount(), want.GetJobId(), want.GetVersion(), len(docs))
		}
		return nil
	}

	jobsClient := pipelinev1.NewJobServiceClient(srv.Conn)
	grpcCall := func(ctx context.Context) error {
		resp, err := jobsClient.GetJob(ctx, &pipelinev1.GetJobRequest{JobId: want.GetJobId()})
		if err != nil {
			return err
		}
		return check("gRPC", resp.GetJob())
	}
	// Keep-alive connections, one per caller, as a load tool or a busy client would hold. No
	// Timeout: net/http pays a timer and a goroutine per request for it, and the gRPC calls have
	// no deadline either; the run's context bounds both.
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: apiConcurrency, MaxConnsPerHost: apiConcurrency}}
	url := "http://" + srv.HTTPAddr + "/v1/jobs/" + want.GetJobId()
	checkREST := func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return correctness("GET %s: %s: %.200s", url, resp.Status, body)
		}
		var out pipelinev1.GetJobResponse
		if err := protojson.Unmarshal(body, &out); err != nil {
			return correctness("GET %s: %v", url, err)
		}
		return check("REST", out.GetJob())
	}
	restCall := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		return checkREST(resp)
	}
	lean := newLeanHTTP(srv.HTTPAddr, "/v1/jobs/"+want.GetJobId(), apiConcurrency)
	defer func() {
		if err != nil {
			lean.Close()
		}
	}()
	leanCall := func(context.Context) error {
		resp, done, err := lean.get()
		if err != nil {
			return err
		}
		defer done()
		return checkREST(resp)
	}
	subject := func(name string, project bool, call func(context.Context) error) *Subject {
		sub := &Subject{Name: name, Project: project}
		sub.Run = func(ctx context.Context, warmup bool) (Sample, error) {
			cpu0 := cpuTime()
			lat, wall, err := loadLoop(ctx, apiConcurrency, total, call)
			cpu := cpuTime() - cpu0
			if err != nil {
				return nil, err // the harness names the subject
			}
			if len(lat) != total {
				return nil, correctness("%d calls answered, want %d", len(lat), total)
			}
			s := latencySample(lat, wall, "calls")
			if cpu > 0 {
				s[apiCPUPerCall] = float64(cpu.Microseconds()) / float64(total)
			}
			return s, nil
		}
		return sub
	}
	rest := subject("REST GET /v1/jobs/{id}", true, restCall)
	restLean := subject("REST GET /v1/jobs/{id}, lean client", true, leanCall)
	grpcSub := subject("gRPC JobService.GetJob", false, grpcCall)
	return &Prepared{
		Input:    fmt.Sprintf("%d GetJob calls per run from %d concurrent callers, one job of %d documents", total, apiConcurrency, len(docs)),
		Subjects: []*Subject{rest, restLean, grpcSub},
		Compare:  [][2]string{{rest.Name, grpcSub.Name}, {restLean.Name, grpcSub.Name}},
		Notes: []string{
			"REST is compared with gRPC: ratio calls/s = REST / gRPC; ratio p99 = gRPC / REST (lower is better); above 1, REST does better",
			"REST with net/http's client (a Go program's REST client: two goroutine hand-offs per request on the caller's side) and with a lean HTTP/1.1 client (each caller writes its request and reads the response on its own keep-alive connection, as a load tool does), so that the client's cost can be told from the server's",
			"a real server in this process (app.Build, server.New) on its own Postgres schema and Redis prefix; each call reads the job from Postgres; REST goes through the gateway (HTTP/1.1, JSON), which calls the same handler in process behind the same interceptors (server/gateway.go)",
			fmt.Sprintf("clients: the same Go loop and callers for both; gRPC over one connection (HTTP/2, multiplexed); REST over up to %d keep-alive connections, no per-call timeout on either side; every answer is read in full, decoded (protojson for REST) and checked to be the job (id, version, document count)", apiConcurrency),
			"CPU µs/call: this process's CPU time per call, the callers' side included (Postgres's not); the load loop stands in for ghz, whose one version served here (v0.93.0) does not build against grpc v1.85",
		},
		Close: func() { lean.Close(); srv.Close() },
	}, nil
}

// leanHTTP makes GET requests over keep-alive HTTP/1.1 connections, one per caller, with no
// goroutine of its own: the caller writes the request and reads the response (net/http's
// parser) itself. A connection the server closes is dialled again.
type leanHTTP struct {
	addr  string
	req   []byte
	conns chan *leanConn
}

type leanConn struct {
	net.Conn
	r *bufio.Reader
}

func newLeanHTTP(addr, path string, conns int) *leanHTTP {
	l := &leanHTTP{
		addr:  addr,
		req:   []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: application/json\r\n\r\n"),
		conns: make(chan *leanConn, conns),
	}
	for range conns {
		l.conns <- nil // dialled on first use
	}
	return l
}

// get sends the request and returns the response, whose body the caller reads in full before
// calling done, which gives the connection back.
func (l *leanHTTP) get() (*http.Response, func(), error) {
	c := <-l.conns
	if c == nil {
		nc, err := net.Dial("tcp", l.addr)
		if err != nil {
			l.conns <- nil
			return nil, nil, err
		}
		c = &leanConn{Conn: nc, r: bufio.NewReader(nc)}
	}
	fail := func(err error) (*http.Response, func(), error) {
		c.Close()
		l.conns <- nil
		return nil, nil, err
	}
	if _, err := c.Write(l.req); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return fail(err)
	}
	return resp, func() {
		if resp.Close {
			c.Close()
			c = nil
		}
		l.conns <- c
	}, nil
}

// Close closes the idle connections.
func (l *leanHTTP) Close() {
	for {
		select {
		case c := <-l.conns:
			if c != nil {
				c.Close()
			}
		default:
			return
		}
	}
}
