package embed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/embed/embedtest"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

const (
	testModel = "test-embed"
	testKey   = "sk-test-0123456789abcdef"
	testDim   = 64
)

// fakeServer speaks the embeddings API, embedding with Hashing so its vectors mean something.
// It scales them and returns them in reverse order, so the client has to normalise and sort.
type fakeServer struct {
	srv    *httptest.Server
	hash   *embed.Hashing
	mu     sync.Mutex
	inputs [][]string // one entry per request, in arrival order
	// override, when set, answers instead of the default reply, given the request's texts.
	override handler
}

type handler func(w http.ResponseWriter, r *http.Request, f *fakeServer, input []string)

type testBundle struct {
	fake   *fakeServer
	client *embed.OpenAI
}

// setup starts a fake server and a client of it; adjust changes the client config.
func setup(t *testing.T, override handler, adjust ...func(*embed.OpenAIConfig)) *testBundle {
	t.Helper()
	f := &fakeServer{hash: newHashing(t, testDim), override: override}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)

	cfg := embed.OpenAIConfig{
		BaseURL:    f.srv.URL,
		Model:      testModel,
		APIKey:     testKey,
		Dimension:  testDim,
		HTTPClient: f.srv.Client(),
	}
	for _, a := range adjust {
		a(&cfg)
	}
	client, err := embed.NewOpenAI(cfg)
	require.NoError(t, err)
	return &testBundle{fake: f, client: client}
}

type request struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

type datum struct {
	Object    string    `json:"object"`
	Index     int       `json:"index"`
	Embedding []float32 `json:"embedding"`
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		http.Error(w, `{"error":{"message":"no such route"}}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		http.Error(w, `{"error":{"message":"missing or wrong key"}}`, http.StatusUnauthorized)
		return
	}
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != testModel || req.EncodingFormat != "float" {
		http.Error(w, `{"error":{"message":"bad request body"}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.inputs = append(f.inputs, req.Input)
	f.mu.Unlock()
	if f.override != nil {
		f.override(w, r, f, req.Input)
		return
	}
	writeEmbeddings(w, f.embed(req.Input))
}

func (f *fakeServer) embed(input []string) []datum {
	vecs, err := f.hash.Embed(context.Background(), input)
	if err != nil {
		panic(err)
	}
	data := make([]datum, len(vecs))
	for i, v := range vecs {
		scaled := make([]float32, len(v))
		for j, x := range v {
			scaled[j] = 3 * x
		}
		data[len(vecs)-1-i] = datum{Object: "embedding", Index: i, Embedding: scaled}
	}
	return data
}

func writeEmbeddings(w http.ResponseWriter, data []datum) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list",
		"data":   data,
		"model":  testModel,
		"usage":  map[string]int{"prompt_tokens": 1, "total_tokens": 1},
	})
}

func (f *fakeServer) requests() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.inputs...)
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("text number %d about topic %d", i, i%7)
	}
	return out
}

func requirePermanent(t *testing.T, err error, contains ...string) {
	t.Helper()
	require.Error(t, err)
	transient, _ := errs.IsTransient(err)
	require.False(t, transient, "want a permanent error, got transient: %v", err)
	for _, c := range contains {
		require.ErrorContains(t, err, c)
	}
	require.NotContains(t, err.Error(), testKey)
}

func requireTransient(t *testing.T, err error, wantRetryAfter time.Duration) {
	t.Helper()
	require.Error(t, err)
	transient, after := errs.IsTransient(err)
	require.True(t, transient, "want a transient error, got permanent: %v", err)
	require.Equal(t, wantRetryAfter, after)
	require.NotContains(t, err.Error(), testKey)
}

func TestOpenAIConformance(t *testing.T) {
	t.Parallel()
	// One server for the whole suite: Deterministic builds a second client and expects the
	// same vectors, which a second server would give too, but one is enough.
	f := setup(t, nil).fake
	embedtest.Run(t, func(t *testing.T) embed.Embedder {
		c, err := embed.NewOpenAI(embed.OpenAIConfig{
			BaseURL: f.srv.URL, Model: testModel, APIKey: testKey, Dimension: testDim,
			BatchSize: 3, HTTPClient: f.srv.Client(),
		})
		require.NoError(t, err)
		return c
	})
}

func TestOpenAIConfig(t *testing.T) {
	t.Parallel()
	valid := embed.OpenAIConfig{BaseURL: "http://localhost:11434", Model: "nomic-embed-text", Dimension: 768}

	c, err := embed.NewOpenAI(valid)
	require.NoError(t, err)
	require.Equal(t, 768, c.Dimension())
	require.Equal(t, "openai/nomic-embed-text/768", c.Fingerprint())

	for name, tc := range map[string]struct {
		adjust func(*embed.OpenAIConfig)
		field  string
	}{
		"no base url":     {func(c *embed.OpenAIConfig) { c.BaseURL = "" }, "base_url"},
		"not http":        {func(c *embed.OpenAIConfig) { c.BaseURL = "ftp://x" }, "base_url"},
		"no host":         {func(c *embed.OpenAIConfig) { c.BaseURL = "http://" }, "base_url"},
		"credentials":     {func(c *embed.OpenAIConfig) { c.BaseURL = "https://u:p@x" }, "base_url"},
		"no model":        {func(c *embed.OpenAIConfig) { c.Model = "" }, "model"},
		"no dimension":    {func(c *embed.OpenAIConfig) { c.Dimension = 0 }, "dimension"},
		"bad batch":       {func(c *embed.OpenAIConfig) { c.BatchSize = -1 }, "batch_size"},
		"bad concurrency": {func(c *embed.OpenAIConfig) { c.MaxConcurrency = -1 }, "max_concurrency"},
		"bad timeout":     {func(c *embed.OpenAIConfig) { c.Timeout = -time.Second }, "timeout"},
	} {
		cfg := valid
		tc.adjust(&cfg)
		_, err := embed.NewOpenAI(cfg)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, name)
		require.ErrorContains(t, err, tc.field, name)
		require.NotContains(t, err.Error(), "u:p", name)
	}
}

func TestOpenAIBaseURLWithV1(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(c *embed.OpenAIConfig) { c.BaseURL += "/v1/" })
	vecs, err := b.client.Embed(context.Background(), []string{"hello"})
	require.NoError(t, err)
	require.Len(t, vecs, 1)
}

func TestOpenAIBatching(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(c *embed.OpenAIConfig) { c.BatchSize = 64 })
	in := texts(150)

	got, err := b.client.Embed(context.Background(), in)
	require.NoError(t, err)

	reqs := b.fake.requests()
	require.Len(t, reqs, 3)
	var sizes []int
	var sent []string
	for _, r := range reqs {
		sizes = append(sizes, len(r))
		sent = append(sent, r...)
	}
	require.ElementsMatch(t, []int{64, 64, 22}, sizes)
	require.ElementsMatch(t, in, sent)

	// In input order, and equal (after normalisation) to what Hashing gives directly.
	want, err := newHashing(t, testDim).Embed(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, got, len(in))
	for i := range in {
		require.InDeltaSlice(t, want[i], got[i], 1e-6, "text %d", i)
	}
}

func TestOpenAIConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	var inFlight, maxInFlight atomic.Int32
	reached := make(chan struct{})
	var once sync.Once
	b := setup(t, func(w http.ResponseWriter, r *http.Request, f *fakeServer, input []string) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if n >= limit {
			once.Do(func() { close(reached) })
		}
		// Hold every request until the limit has been reached once, so the test sees the
		// client fill all its slots (and never more); the timer only keeps a client that
		// never reaches the limit from hanging the test.
		select {
		case <-reached:
		case <-time.After(5 * time.Second):
		}
		writeEmbeddings(w, f.embed(input))
	}, func(c *embed.OpenAIConfig) { c.BatchSize = 2; c.MaxConcurrency = limit })

	// Several callers at once, each with several batches: the limit is per client.
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := b.client.Embed(context.Background(), texts(9))
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}
	require.Len(t, b.fake.requests(), 4*5)
	require.Equal(t, int32(limit), maxInFlight.Load())
}

func TestOpenAIRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"message":"Rate limit reached","type":"requests"}}`))
	})
	_, err := b.client.Embed(context.Background(), texts(3))
	requireTransient(t, err, 2*time.Second)
	require.ErrorContains(t, err, "Rate limit reached")
	require.ErrorContains(t, err, "429")
}

func TestOpenAIRetryAfterDate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, err := b.client.Embed(context.Background(), texts(1))
	transient, after := errs.IsTransient(err)
	require.True(t, transient, "%v", err)
	// The date has whole seconds: anything from a little under 89s up to 90s.
	require.InDelta(t, 89.5, after.Seconds(), 1.0)
}

func TestOpenAIServerErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		b := setup(t, func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
			http.Error(w, "upstream is warming up", status)
		})
		_, err := b.client.Embed(context.Background(), texts(1))
		requireTransient(t, err, 0)
		require.ErrorContains(t, err, fmt.Sprint(status))
		require.ErrorContains(t, err, "upstream is warming up")
	}
}

func TestOpenAITimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ *fakeServer, _ []string) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, func(c *embed.OpenAIConfig) { c.Timeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := b.client.Embed(context.Background(), texts(1))
	requireTransient(t, err, 0)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestOpenAINetworkError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.fake.srv.Close()
	_, err := b.client.Embed(context.Background(), texts(1))
	requireTransient(t, err, 0)
}

func TestOpenAICallerCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ *fakeServer, _ []string) {
		cancel()
		<-r.Context().Done()
	})
	_, err := b.client.Embed(ctx, texts(1))
	require.ErrorIs(t, err, context.Canceled)
	// The caller stopped; that is neither a reason to retry nor a verdict on the texts, and
	// the worker tells it apart by the context error.
	transient, _ := errs.IsTransient(err)
	require.False(t, transient)
}

func TestOpenAIPermanentErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		reply    handler
		contains []string
	}{
		"400 with message": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":{"message":"bad input","type":"invalid_request_error"}}`))
			},
			contains: []string{"400", "bad input"},
		},
		"401 echoing the key": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided: ` + testKey + `"}}`))
			},
			contains: []string{"401", "Incorrect API key provided: [redacted]"},
		},
		"404 flat error (Ollama)": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"error":"model \"test-embed\" not found, try pulling it first"}`))
			},
			contains: []string{"404", `model "test-embed" not found`},
		},
		"422 long message truncated": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				w.WriteHeader(http.StatusUnprocessableEntity)
				_, _ = w.Write([]byte(`{"message":"` + strings.Repeat("x", 10000) + `"}`))
			},
			contains: []string{"422", "xxx…"},
		},
		"malformed JSON": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				_, _ = w.Write([]byte(`{"data": [{"index": 0, "embedding": [0.1, `))
			},
			contains: []string{"malformed reply"},
		},
		"HTML instead of JSON": {
			reply: func(w http.ResponseWriter, _ *http.Request, _ *fakeServer, _ []string) {
				_, _ = w.Write([]byte(`<html><body>Welcome to nginx</body></html>`))
			},
			contains: []string{"malformed reply"},
		},
		"too few embeddings": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				writeEmbeddings(w, f.embed(input)[1:])
			},
			contains: []string{"got 2 embeddings for 3 inputs"},
		},
		"too many embeddings": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				writeEmbeddings(w, f.embed(append(input, "extra")))
			},
			contains: []string{"got 4 embeddings for 3 inputs"},
		},
		"duplicate index": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				data := f.embed(input)
				data[1].Index = data[0].Index
				writeEmbeddings(w, data)
			},
			contains: []string{"appears twice"},
		},
		"index out of range": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				data := f.embed(input)
				data[0].Index = 7
				writeEmbeddings(w, data)
			},
			contains: []string{"index 7 out of range"},
		},
		"wrong dimension": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				data := f.embed(input)
				data[2].Embedding = data[2].Embedding[:testDim-1]
				writeEmbeddings(w, data)
			},
			contains: []string{fmt.Sprintf("length %d, configured dimension is %d", testDim-1, testDim)},
		},
		"zero vector": {
			reply: func(w http.ResponseWriter, _ *http.Request, f *fakeServer, input []string) {
				data := f.embed(input)
				data[0].Embedding = make([]float32, testDim)
				writeEmbeddings(w, data)
			},
			contains: []string{"zero or non-finite vector"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.reply)
			_, err := b.client.Embed(context.Background(), texts(3))
			requirePermanent(t, err, tc.contains...)
		})
	}
}

func TestOpenAIKeyHandling(t *testing.T) {
	t.Parallel()

	// Sent as a bearer token: the fake answers 401 otherwise.
	b := setup(t, nil)
	_, err := b.client.Embed(context.Background(), texts(1))
	require.NoError(t, err)

	// A wrong key: the error says 401 and the server's message, never the key.
	b = setup(t, nil, func(c *embed.OpenAIConfig) { c.APIKey = "sk-wrong-secret" })
	_, err = b.client.Embed(context.Background(), texts(1))
	requirePermanent(t, err, "401", "missing or wrong key")
	require.NotContains(t, err.Error(), "sk-wrong-secret")

	// No key: no Authorization header at all.
	var sawHeader atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHeader.Store(r.Header.Get("Authorization") != "")
		http.Error(w, "nope", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	c, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: srv.URL, Model: testModel, Dimension: testDim, HTTPClient: srv.Client()})
	require.NoError(t, err)
	_, err = c.Embed(context.Background(), texts(1))
	requirePermanent(t, err, "403")
	require.False(t, sawHeader.Load())
}
