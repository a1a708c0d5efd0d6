package embed

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/retry"
)

// OpenAIConfig configures a client of an OpenAI-compatible embeddings server.
type OpenAIConfig struct {
	// BaseURL is the server's root, e.g. "https://api.openai.com" or "http://localhost:11434"
	// (Ollama); requests go to BaseURL + "/v1/embeddings". A trailing "/v1" is accepted and not
	// doubled. Required.
	BaseURL string
	// Model is sent as "model", e.g. "text-embedding-3-small". Required.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <key>". It never appears in errors.
	APIKey string
	// Dimension is the length of the model's vectors (1536 for text-embedding-3-small, 768 for
	// nomic-embed-text, ...). A reply with another length is a permanent error. Required.
	Dimension int
	// BatchSize is the most texts per request; Embed splits larger inputs. Defaults to 64.
	BatchSize int
	// MaxConcurrency is the most requests in flight, across all Embed calls on this client.
	// Defaults to 4.
	MaxConcurrency int
	// Timeout bounds each request, from sending to reading the whole reply. Defaults to 30s.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to a client with no timeout of its own (Timeout
	// applies per request through the context).
	HTTPClient *http.Client
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c OpenAIConfig) WithDefaults() OpenAIConfig {
	c.BatchSize = cmp.Or(c.BatchSize, 64)
	c.MaxConcurrency = cmp.Or(c.MaxConcurrency, 4)
	c.Timeout = cmp.Or(c.Timeout, 30*time.Second)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c
}

// Validate reports a missing or out-of-range field.
func (c OpenAIConfig) Validate() error {
	if c.BaseURL == "" {
		return errs.InvalidArgument("base_url", "is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errs.InvalidArgument("base_url", "must be an http or https URL, got %q", c.BaseURL)
	}
	if u.User != nil {
		// Credentials in the URL would end up in error messages; the key goes in APIKey.
		return errs.InvalidArgument("base_url", "must not contain credentials; use the API key")
	}
	if c.Model == "" {
		return errs.InvalidArgument("model", "is required")
	}
	if c.Dimension <= 0 {
		return errs.InvalidArgument("dimension", "is required: the length of the model's vectors")
	}
	if c.BatchSize < 1 {
		return errs.InvalidArgument("batch_size", "must be at least 1, got %d", c.BatchSize)
	}
	if c.MaxConcurrency < 1 {
		return errs.InvalidArgument("max_concurrency", "must be at least 1, got %d", c.MaxConcurrency)
	}
	if c.Timeout < 0 {
		return errs.InvalidArgument("timeout", "must not be negative, got %s", c.Timeout)
	}
	return nil
}

// OpenAI embeds texts with any server speaking the OpenAI embeddings API (POST /v1/embeddings):
// OpenAI itself, Ollama, vLLM, Hugging Face TEI and others.
//
// It does not retry. Rate limits (429), server errors (5xx), network errors and timeouts come
// back wrapped by errs.Transient, with the server's Retry-After when it sent one, and the
// worker retries the job with backoff; retrying here too would multiply the attempts and hide
// the wait from the queue. Bad requests, authentication failures, unknown models and replies
// that do not fit (wrong count or length, malformed JSON) are permanent errors.
//
// Vectors are L2-normalised here, since not every server does it.
type OpenAI struct {
	cfg         OpenAIConfig
	endpoint    string
	fingerprint string
	// sem holds one token per request in flight, shared by all Embed calls.
	sem chan struct{}
}

// NewOpenAI builds a client; zero config fields take their defaults. It sends nothing.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embed: openai: %w", err)
	}
	base := strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), "/v1")
	return &OpenAI{
		cfg:         cfg,
		endpoint:    base + "/v1/embeddings",
		fingerprint: fmt.Sprintf("openai/%s/%d", cfg.Model, cfg.Dimension),
		sem:         make(chan struct{}, cfg.MaxConcurrency),
	}, nil
}

// Dimension implements Embedder.
func (o *OpenAI) Dimension() int { return o.cfg.Dimension }

// Fingerprint implements Embedder: "openai/<model>/<dimension>". The server's address is not
// part of it: the same model served elsewhere gives the same vectors.
func (o *OpenAI) Fingerprint() string { return o.fingerprint }

// Embed implements Embedder. Batches are sent concurrently within MaxConcurrency; the first
// failure cancels the rest and is returned. When ctx itself ends, its error is returned as is
// (not transient): the caller chose to stop.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	if len(texts) == 0 {
		return out, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for start := 0; start < len(texts); start += o.cfg.BatchSize {
		end := min(start+o.cfg.BatchSize, len(texts))
		g.Go(func() error {
			vecs, err := o.embedBatch(gctx, texts[start:end])
			if err != nil {
				return err
			}
			copy(out[start:end], vecs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// A batch may have failed only because the caller's context ended.
			return nil, fmt.Errorf("embed: openai: %w", ctxErr)
		}
		return nil, err
	}
	return out, nil
}

type embeddingsRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

type embeddingsResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
}

// maxReplyBytes bounds what is read from the server: a batch of 64 vectors of 4096 floats in
// JSON is about 6 MB; anything far beyond is not a reply we want to hold.
const maxReplyBytes = 64 << 20

// embedBatch sends one request and checks its reply.
func (o *OpenAI) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-o.sem }()

	body, err := json.Marshal(embeddingsRequest{Model: o.cfg.Model, Input: texts, EncodingFormat: "float"})
	if err != nil {
		return nil, fmt.Errorf("embed: openai: encode request: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("embed: openai: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}

	resp, err := o.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, o.requestError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, o.requestError(ctx, fmt.Errorf("read reply: %w", err))
	}

	if resp.StatusCode != http.StatusOK {
		return nil, o.statusError(resp, raw)
	}
	if len(raw) > maxReplyBytes {
		return nil, fmt.Errorf("embed: openai: %s: reply larger than %d bytes", o.cfg.Model, maxReplyBytes)
	}
	var reply embeddingsResponse
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("embed: openai: %s: malformed reply: %w", o.cfg.Model, err)
	}
	return o.vectors(reply, len(texts))
}

// requestError classifies a failure to send or receive. The *url.Error from the client names
// the endpoint but never the headers, so the key cannot leak through it.
func (o *OpenAI) requestError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("embed: openai: %w", ctxErr)
	}
	// Our own per-request timeout or a network failure: worth another try later.
	return errs.Transient(fmt.Errorf("embed: openai: %s: %w", o.cfg.Model, err), 0)
}

// statusError turns a non-200 reply into a transient or permanent error that carries the
// server's own message, shortened.
func (o *OpenAI) statusError(resp *http.Response, body []byte) error {
	msg := serverMessage(body)
	if o.cfg.APIKey != "" {
		// Some servers echo the header or key back ("Incorrect API key provided: sk-...").
		msg = strings.ReplaceAll(msg, o.cfg.APIKey, "[redacted]")
	}
	err := fmt.Errorf("embed: openai: %s: server replied %s", o.cfg.Model, resp.Status)
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode >= 500:
		return errs.Transient(err, retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	default:
		// 400, 401, 403, 404, 413, 422 and anything unexpected: the same request would fail
		// the same way.
		return err
	}
}

// maxMessageRunes caps the server message quoted in an error.
const maxMessageRunes = 300

// serverMessage extracts {"error": {"message": ...}} (OpenAI, vLLM), {"error": "..."} (Ollama,
// TEI) or {"message": ...}, else the start of the body when it is short text.
func serverMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	msg := ""
	if json.Unmarshal(body, &v) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		var flat string
		switch {
		case json.Unmarshal(v.Error, &nested) == nil && nested.Message != "":
			msg = nested.Message
		case json.Unmarshal(v.Error, &flat) == nil && flat != "":
			msg = flat
		default:
			msg = v.Message
		}
	} else if utf8.Valid(body) {
		msg = string(body)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if utf8.RuneCountInString(msg) > maxMessageRunes {
		msg = string([]rune(msg)[:maxMessageRunes]) + "…"
	}
	return msg
}

// vectors checks the reply against the request and returns normalised vectors in input order.
func (o *OpenAI) vectors(reply embeddingsResponse, n int) ([][]float32, error) {
	if len(reply.Data) != n {
		return nil, fmt.Errorf("embed: openai: %s: got %d embeddings for %d inputs", o.cfg.Model, len(reply.Data), n)
	}
	out := make([][]float32, n)
	backing := make([]float32, n*o.cfg.Dimension)
	for _, d := range reply.Data {
		if d.Index < 0 || d.Index >= n {
			return nil, fmt.Errorf("embed: openai: %s: embedding index %d out of range for %d inputs", o.cfg.Model, d.Index, n)
		}
		if out[d.Index] != nil {
			return nil, fmt.Errorf("embed: openai: %s: embedding index %d appears twice", o.cfg.Model, d.Index)
		}
		if len(d.Embedding) != o.cfg.Dimension {
			return nil, fmt.Errorf("embed: openai: %s: embedding of length %d, configured dimension is %d", o.cfg.Model, len(d.Embedding), o.cfg.Dimension)
		}
		vec := backing[d.Index*o.cfg.Dimension : (d.Index+1)*o.cfg.Dimension : (d.Index+1)*o.cfg.Dimension]
		if err := normalise(d.Embedding, vec); err != nil {
			return nil, fmt.Errorf("embed: openai: %s: embedding %d: %w", o.cfg.Model, d.Index, err)
		}
		out[d.Index] = vec
	}
	return out, nil
}

var errZeroVector = errors.New("zero or non-finite vector")

// normalise writes src scaled to unit length into dst. A zero or non-finite vector cannot be
// used for cosine and would fail the same way again, so it is an error.
func normalise(src []float64, dst []float32) error {
	var sum float64
	for _, v := range src {
		sum += v * v
	}
	if sum == 0 || math.IsInf(sum, 0) || math.IsNaN(sum) {
		return errZeroVector
	}
	inv := 1 / math.Sqrt(sum)
	for i, v := range src {
		dst[i] = float32(v * inv)
	}
	return nil
}
