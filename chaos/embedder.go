package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// badMarker makes the embedder refuse a text with 400, every time.
const badMarker = "PERMANENTLYBAD"

// embedder is an OpenAI-compatible /v1/embeddings server with fault injection. Vectors are a
// fixed function of the text (hashed words), so redoing a document gives the same vectors.
//
// Faults, decided per call: 400 for any input holding badMarker; otherwise, with the configured
// rates, 500, 503, 429 with Retry-After: 1, a dropped connection, or a hang past the client's
// 30 s timeout (at most maxHangs of those). The same input (the call's texts) fails
// transiently at most maxFailsPerInput times, so the workers' retries can always get through:
// what is measured is recovery, not the luck of the draw.
type embedder struct {
	dim      int
	rate     float64 // share of calls that fail transiently
	maxHangs int
	latency  [2]time.Duration // each call takes between these

	mu       sync.Mutex
	rng      *rand.Rand
	failures map[uint64]int // per input hash
	counts   map[string]int // per outcome
	hangs    int
	lis      net.Listener
	srv      *http.Server
}

const maxFailsPerInput = 2

func newEmbedder(dim int, rate float64, maxHangs int, seed uint64) *embedder {
	return &embedder{
		dim: dim, rate: rate, maxHangs: maxHangs,
		latency:  [2]time.Duration{30 * time.Millisecond, 120 * time.Millisecond},
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		failures: map[uint64]int{},
		counts:   map[string]int{},
	}
}

func (e *embedder) start() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.lis = lis
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", e.handle)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(lis) }()
	return nil
}

func (e *embedder) baseURL() string { return "http://" + e.lis.Addr().String() }

func (e *embedder) close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
}

func (e *embedder) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

type embedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

func (e *embedder) decide(texts []string) (outcome string, delay time.Duration) {
	h := fnv.New64a()
	for _, t := range texts {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	key := h.Sum64()
	e.mu.Lock()
	defer e.mu.Unlock()
	delay = e.latency[0] + time.Duration(e.rng.Int64N(int64(e.latency[1]-e.latency[0])+1))
	for _, t := range texts {
		if strings.Contains(t, badMarker) {
			e.counts["400_permanent"]++
			return "400", delay
		}
	}
	outcome = "ok"
	if e.failures[key] < maxFailsPerInput && e.rng.Float64() < e.rate {
		r := e.rng.Float64()
		switch {
		case r < 0.35:
			outcome = "500"
		case r < 0.65:
			outcome = "503"
		case r < 0.90:
			outcome = "429"
		case r < 0.97 || e.hangs >= e.maxHangs:
			outcome = "drop"
		default:
			outcome = "hang"
			e.hangs++
		}
		e.failures[key]++
	}
	e.counts[outcome]++
	e.counts["calls"]++
	return outcome, delay
}

func (e *embedder) handle(w http.ResponseWriter, r *http.Request) {
	var req embedRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	outcome, delay := e.decide(req.Input)
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	switch outcome {
	case "400":
		writeErr(w, http.StatusBadRequest, "input rejected: contains "+badMarker)
	case "500":
		writeErr(w, http.StatusInternalServerError, "injected internal error")
	case "503":
		writeErr(w, http.StatusServiceUnavailable, "injected unavailable")
	case "429":
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusTooManyRequests, "injected rate limit")
	case "drop":
		time.Sleep(time.Second)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		writeErr(w, http.StatusBadGateway, "injected drop")
	case "hang":
		// Past the OpenAI client's 30 s per-request timeout; the client gives up first.
		select {
		case <-time.After(35 * time.Second):
		case <-r.Context().Done():
			return
		}
		writeErr(w, http.StatusGatewayTimeout, "injected hang")
	default:
		type item struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		}
		data := make([]item, len(req.Input))
		for i, t := range req.Input {
			data[i] = item{Object: "embedding", Index: i, Embedding: vectorOf(t, e.dim)}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "model": req.Model, "data": data,
			"usage": map[string]int{"prompt_tokens": 0, "total_tokens": 0}})
	}
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":"chaos"}}`, msg)
}

// vectorOf hashes each word into one of dim buckets with a sign, then normalises; never zero.
func vectorOf(text string, dim int) []float64 {
	v := make([]float64, dim)
	v[0] = 0.01
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		sign := 1.0
		if x&1 == 1 {
			sign = -1
		}
		v[int((x>>1)%uint64(dim))] += sign
	}
	var n float64
	for _, x := range v {
		n += x * x
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] /= n
	}
	return v
}
