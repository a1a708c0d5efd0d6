package server

// Dependency health: /readyz and the gRPC health service report Postgres, Redis, the vector store
// and the embedder one by one (the spec's "System Health"). See
// docs/decisions/0010-worker-registry-and-stats.md for which are required.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Names of the dependencies: the keys of /readyz's checks and gRPC health service names.
const (
	depPostgres    = "postgres"
	depRedis       = "redis"
	depVectorStore = "vector_store"
	depEmbedder    = "embedder"
)

const (
	// dependencyCheckTimeout bounds each dependency's check; they run at once, so a check of all
	// takes about as long as the slowest.
	dependencyCheckTimeout = 2 * time.Second
	// healthMaxAge is how long one round of checks answers /readyz: probes arriving together
	// (or a flood of them; /readyz needs no key) cost the dependencies one round, and a paid
	// embedder one call.
	healthMaxAge = time.Second
	// healthInterval is how often the gRPC health service is brought up to date.
	healthInterval = 5 * time.Second
)

// requiredDeps are the dependencies without which the server cannot do its work: readiness fails
// when one is down. Without the vector store or the embedder, search fails but everything else
// (uploads, jobs, crawls, watching) goes on, and every replica shares them, so failing readiness
// would only take the whole API away: they are reported, and SearchService goes NOT_SERVING.
var requiredDeps = []string{depPostgres, depRedis}

// serviceDeps says which dependencies each gRPC service needs beyond the required ones.
var serviceDeps = map[string][]string{
	pipelinev1.JobService_ServiceDesc.ServiceName:     nil,
	pipelinev1.ContentService_ServiceDesc.ServiceName: nil,
	pipelinev1.SearchService_ServiceDesc.ServiceName:  {depVectorStore, depEmbedder},
	pipelinev1.WorkerService_ServiceDesc.ServiceName:  nil,
	pipelinev1.SystemService_ServiceDesc.ServiceName:  nil,
}

// Statuses of one dependency.
const (
	depOK            = "ok"
	depUnavailable   = "unavailable"
	depNotConfigured = "not_configured"
)

// Overall readiness.
const (
	readyOK       = "ready"
	readyDegraded = "degraded" // an optional dependency is down: still ready
	readyNot      = "not_ready"
)

// dependency is one thing to check.
type dependency struct {
	name  string
	check func(context.Context) error // nil: not configured
}

// depStatus is one dependency's line in /readyz. Error is short and never carries the driver's
// text (addresses, user names): /readyz needs no key. The full error goes to the log.
type depStatus struct {
	Status    string  `json:"status"`
	Required  bool    `json:"required"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	detail    error   // the check's error, for the log only
}

// readiness is the body of /readyz.
type readiness struct {
	Status    string               `json:"status"`
	Checks    map[string]depStatus `json:"checks"`
	CheckedAt time.Time            `json:"checked_at"`
}

// ok reports whether every named dependency is up.
func (r readiness) ok(names ...string) bool {
	for _, n := range names {
		if r.Checks[n].Status != depOK {
			return false
		}
	}
	return true
}

// healthChecker runs the dependency checks, one round at a time, and keeps the last round for
// healthMaxAge.
type healthChecker struct {
	deps []dependency
	log  *slog.Logger

	mu     sync.Mutex // held during a round: callers arriving meanwhile wait for its result
	last   readiness
	lastAt time.Time
}

func (s *Server) newHealthChecker() *healthChecker {
	d := s.deps
	deps := []dependency{
		{name: depPostgres, check: func(ctx context.Context) error { return d.Pool.Ping(ctx) }},
		{name: depRedis, check: func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() }},
		{name: depVectorStore},
		{name: depEmbedder},
	}
	if d.Vectors != nil {
		deps[2].check = func(ctx context.Context) error { return checkVectorStore(ctx, d.Vectors) }
	}
	if d.Embedder != nil {
		deps[3].check = func(ctx context.Context) error {
			v, err := d.Embedder.Embed(ctx, []string{"readiness check"})
			if err == nil && (len(v) != 1 || len(v[0]) != d.Embedder.Dimension()) {
				err = fmt.Errorf("the embedder answered %d vectors for 1 text", len(v))
			}
			return err
		}
	}
	return &healthChecker{deps: deps, log: s.log}
}

// checkVectorStore asks the store something cheap: a Ping when it has one, else a count of the
// chunks of a document that does not exist.
func checkVectorStore(ctx context.Context, vs vector.Store) error {
	if p, ok := vs.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	_, err := vs.Count(ctx, vector.Filter{DocumentIDs: []string{"readiness-check"}})
	return err
}

// check returns the latest round of checks, running a new one when the last is older than
// healthMaxAge. The round runs on its own deadline, not the caller's: a probe that gives up
// early must not leave a false failure for the others.
func (h *healthChecker) check() readiness {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastAt.IsZero() && time.Since(h.lastAt) < healthMaxAge {
		return h.last
	}
	results := make([]depStatus, len(h.deps))
	var wg sync.WaitGroup
	for i, d := range h.deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.checkOne(d)
		}()
	}
	wg.Wait()

	r := readiness{Status: readyOK, Checks: make(map[string]depStatus, len(h.deps)), CheckedAt: time.Now().UTC()}
	for i, d := range h.deps {
		// Log changes, and at start only what is down: a healthy start needs no four lines.
		prev, seen := h.last.Checks[d.name]
		if cur := results[i]; (seen && prev.Status != cur.Status) || (!seen && cur.Status == depUnavailable) {
			h.logChange(d.name, cur)
		}
		r.Checks[d.name] = results[i]
	}
	if !r.ok(requiredDeps...) {
		r.Status = readyNot
	} else if !r.ok(depVectorStore, depEmbedder) {
		r.Status = readyDegraded
	}
	h.last, h.lastAt = r, time.Now()
	return r
}

// checkOne runs one dependency's check on its own deadline.
func (h *healthChecker) checkOne(d dependency) depStatus {
	st := depStatus{Status: depOK, Required: isRequired(d.name)}
	if d.check == nil {
		st.Status, st.Error = depNotConfigured, "not configured in this process"
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), dependencyCheckTimeout)
	defer cancel()
	start := time.Now()
	err := d.check(ctx)
	st.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		st.Status, st.Error = depUnavailable, fmt.Sprintf("no answer within %s", dependencyCheckTimeout)
		st.detail = err
	default:
		st.Status, st.Error = depUnavailable, "check failed; the server log has the details"
		st.detail = err
	}
	return st
}

func (h *healthChecker) logChange(name string, st depStatus) {
	switch st.Status {
	case depOK:
		h.log.Info("dependency available", "dependency", name)
	case depNotConfigured:
	default:
		h.log.Warn("dependency unavailable", "dependency", name, "required", st.Required, "reason", st.Error, "err", st.detail)
	}
}

func isRequired(name string) bool { return slices.Contains(requiredDeps, name) }

// readyz answers 200 when every required dependency is up (the body's status says "degraded"
// when an optional one is down) and 503 otherwise; the body has one line per dependency.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	r := s.checker.check()
	code := http.StatusOK
	if r.Status == readyNot {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// watchHealth keeps the gRPC health service in step with the dependencies: each dependency under
// its own name, each API service by the dependencies it needs, and "" (the whole server) by the
// required ones.
func (s *Server) watchHealth(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		r := s.checker.check()
		set := func(name string, ok bool) {
			st := healthpb.HealthCheckResponse_SERVING
			if !ok {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
			s.health.SetServingStatus(name, st)
		}
		for name := range r.Checks {
			set(name, r.ok(name))
		}
		set("", r.ok(requiredDeps...))
		for service, needs := range serviceDeps {
			set(service, r.ok(requiredDeps...) && r.ok(needs...))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
