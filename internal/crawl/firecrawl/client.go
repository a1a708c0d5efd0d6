package firecrawl

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/retry"
)

// DefaultBaseURL is Firecrawl's hosted API.
const DefaultBaseURL = "https://api.firecrawl.dev"

// Config configures a Client.
type Config struct {
	// BaseURL is the server's root; requests go to BaseURL + "/v2/...". A trailing "/v2" is
	// accepted and not doubled. For self-hosted Firecrawl use its address, e.g.
	// "http://firecrawl:3002". Defaults to DefaultBaseURL.
	BaseURL string
	// APIKey, when set, is sent as "Authorization: Bearer <key>" (self-hosted Firecrawl may run
	// without one). It never appears in errors.
	APIKey string
	// HTTPClient sends the requests. Defaults to a client with no timeout of its own (Timeout
	// applies per request through the context).
	HTTPClient *http.Client
	// Timeout bounds each request, from sending to reading the whole reply. Defaults to 30s.
	Timeout time.Duration
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.BaseURL = cmp.Or(c.BaseURL, DefaultBaseURL)
	c.Timeout = cmp.Or(c.Timeout, 30*time.Second)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c
}

// Validate reports a malformed field.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errs.InvalidArgument("base_url", "must be an http or https URL, got %q", redactURL(c.BaseURL))
	}
	if u.User != nil {
		// Credentials in the URL would end up in error messages; the key goes in APIKey.
		return errs.InvalidArgument("base_url", "must not contain credentials; use the API key")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errs.InvalidArgument("base_url", "must not have a query or fragment")
	}
	if c.Timeout < 0 {
		return errs.InvalidArgument("timeout", "must not be negative, got %s", c.Timeout)
	}
	return nil
}

// redactURL keeps a rejected base URL out of errors when it might hold credentials.
func redactURL(s string) string {
	if strings.Contains(s, "@") {
		return "[redacted]"
	}
	return s
}

// ErrUnauthorized matches (errors.Is) a 401 or 403 reply: the key is missing, wrong or revoked.
var ErrUnauthorized = errors.New("firecrawl rejected the API key")

// APIError is a reply with a status other than 2xx. 429, 408 and 5xx replies come wrapped by
// errs.Transient; the others are permanent. A 401 or 403 matches ErrUnauthorized and a 404
// matches errs.ErrNotFound.
type APIError struct {
	// Op names the call: "start crawl", "get crawl <id>", "cancel crawl <id>", ...
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's own explanation, shortened, with the API key redacted.
	Message string
}

func (e *APIError) Error() string {
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		// The server's text adds nothing here and is the likeliest place for a key to echo.
		return fmt.Sprintf("firecrawl: %s: %s (HTTP %d)", e.Op, ErrUnauthorized, e.StatusCode)
	}
	s := fmt.Sprintf("firecrawl: %s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return errs.ErrNotFound
	}
	return nil
}

// Client talks to Firecrawl's v2 crawl API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL // BaseURL without a trailing "/" or "/v2"
	api  string   // base + "/v2"
}

// New builds a client; zero config fields take their defaults. It sends nothing.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("firecrawl: %w", err)
	}
	base, _ := url.Parse(cfg.BaseURL) // checked by Validate
	base.Path = strings.TrimSuffix(strings.TrimRight(base.Path, "/"), "/v2")
	base.RawPath = ""
	return &Client{cfg: cfg, base: base, api: base.String() + "/v2"}, nil
}

// Webhook asks Firecrawl to POST crawl events to URL as they happen.
type Webhook struct {
	// URL receives the events. Required.
	URL string
	// Headers are added to every delivery.
	Headers map[string]string
	// Metadata is echoed back in every delivery's "metadata".
	Metadata map[string]any
	// Events selects the events to send: "started", "page", "completed", "failed". Empty
	// means all of them.
	Events []string
}

// webhookEvents are the names Webhook.Events accepts.
var webhookEvents = []string{"started", "page", "completed", "failed"}

// StartRequest describes a crawl to start.
type StartRequest struct {
	// URL is where the crawl starts. Required; http or https.
	URL string
	// Options bound the crawl, mapped onto v2 fields: Limit -> "limit" (crawl.DefaultLimit
	// when zero, as for every crawler), MaxDepth -> "maxDiscoveryDepth" (omitted when zero:
	// no depth limit; Firecrawl counts sitemap pages as depth 0 too), IncludePaths ->
	// "includePaths", ExcludePaths -> "excludePaths" (regular expressions on the URL path,
	// run by Firecrawl's JavaScript engine), AllowSubdomains -> "allowSubdomains",
	// IgnoreQueryParameters -> "ignoreQueryParameters".
	Options crawl.Options
	// Webhook, when set, receives events for this crawl.
	Webhook *Webhook
	// OnlyMainContent drops headers, navigation and footers from each page's markdown.
	// A pointer because the default is true: nil means true.
	OnlyMainContent *bool
}

func (r StartRequest) validate() error {
	if err := checkHTTPURL(r.URL); err != nil {
		return errs.InvalidArgument("url", "%s", err)
	}
	if r.Options.Limit < 0 {
		return errs.InvalidArgument("limit", "must not be negative, got %d", r.Options.Limit)
	}
	if r.Options.MaxDepth < 0 {
		return errs.InvalidArgument("max_depth", "must not be negative, got %d", r.Options.MaxDepth)
	}
	if w := r.Webhook; w != nil {
		if err := checkHTTPURL(w.URL); err != nil {
			return errs.InvalidArgument("webhook.url", "%s", err)
		}
		for _, e := range w.Events {
			if !slices.Contains(webhookEvents, e) {
				return errs.InvalidArgument("webhook.events", "unknown event %q; want one of %s",
					e, strings.Join(webhookEvents, ", "))
			}
		}
	}
	return nil
}

func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	return nil
}

// Wire format of POST /v2/crawl.
type startBody struct {
	URL                   string        `json:"url"`
	Limit                 int           `json:"limit,omitempty"`
	MaxDiscoveryDepth     int           `json:"maxDiscoveryDepth,omitempty"`
	IncludePaths          []string      `json:"includePaths,omitempty"`
	ExcludePaths          []string      `json:"excludePaths,omitempty"`
	AllowSubdomains       bool          `json:"allowSubdomains,omitempty"`
	IgnoreQueryParameters bool          `json:"ignoreQueryParameters,omitempty"`
	ScrapeOptions         scrapeOptions `json:"scrapeOptions"`
	Webhook               *webhookBody  `json:"webhook,omitempty"`
}

type scrapeOptions struct {
	Formats         []string `json:"formats"`
	OnlyMainContent bool     `json:"onlyMainContent"`
}

type webhookBody struct {
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers,omitempty"`
	Metadata map[string]any    `json:"metadata,omitempty"`
	Events   []string          `json:"events,omitempty"`
}

type startReply struct {
	Success *bool      `json:"success"`
	ID      flexString `json:"id"`
	Error   flexString `json:"error"`
}

// StartCrawl starts a crawl and returns its id. Firecrawl answers at once; pages arrive
// through the webhook or GetCrawl.
func (c *Client) StartCrawl(ctx context.Context, req StartRequest) (string, error) {
	const op = "start crawl"
	if err := req.validate(); err != nil {
		return "", fmt.Errorf("firecrawl: %s: %w", op, err)
	}
	opts := req.Options.WithDefaults()
	body := startBody{
		URL:                   req.URL,
		Limit:                 opts.Limit,
		MaxDiscoveryDepth:     opts.MaxDepth,
		IncludePaths:          opts.IncludePaths,
		ExcludePaths:          opts.ExcludePaths,
		AllowSubdomains:       opts.AllowSubdomains,
		IgnoreQueryParameters: opts.IgnoreQueryParameters,
		ScrapeOptions: scrapeOptions{
			Formats:         []string{"markdown"},
			OnlyMainContent: req.OnlyMainContent == nil || *req.OnlyMainContent,
		},
	}
	if w := req.Webhook; w != nil {
		body.Webhook = &webhookBody{URL: w.URL, Headers: w.Headers, Metadata: w.Metadata, Events: w.Events}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		// Only Metadata can hold something JSON cannot carry (a func, a channel, NaN).
		return "", fmt.Errorf("firecrawl: %s: %w", op, errs.InvalidArgument("webhook.metadata", "%s", err))
	}
	reply, err := c.do(ctx, op, http.MethodPost, c.api+"/crawl", raw)
	if err != nil {
		return "", err
	}
	var r startReply
	if err := decodeReply(op, reply, &r); err != nil {
		return "", err
	}
	if r.Success != nil && !*r.Success || r.ID == "" {
		msg := c.clean(string(r.Error))
		if msg == "" {
			msg = "no crawl id in the reply"
		}
		return "", fmt.Errorf("firecrawl: %s: %s", op, msg)
	}
	if err := checkID(string(r.ID)); err != nil {
		return "", fmt.Errorf("firecrawl: %s: reply has a crawl id we cannot use: %w", op, err)
	}
	return string(r.ID), nil
}

// Crawl states as Firecrawl reports them.
const (
	StatusScraping  = "scraping"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Status is one reply of GET /v2/crawl/{id}.
type Status struct {
	// Status is "scraping", "completed", "failed" or "cancelled" (others are passed through).
	Status string
	// Total is the number of pages Firecrawl has attempted; Completed, those it scraped.
	Total, Completed int
	// CreditsUsed is what the crawl has cost so far.
	CreditsUsed int
	// ExpiresAt is when Firecrawl drops the results; zero when the reply had none.
	ExpiresAt time.Time
	// Error is the server's reason for a failed crawl, when it sent one (not every server
	// does: the reconciler should be ready for an empty reason).
	Error string
	// Pages are the pages in this reply.
	Pages []Page
	// Next is the absolute URL of the next reply, empty on the last one.
	Next string
}

// Terminal reports whether the crawl has stopped for good.
func (s *Status) Terminal() bool {
	switch s.Status {
	case StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Page is one scraped page.
type Page struct {
	// URL is where the page was finally read, after redirects (metadata.url), or SourceURL
	// when the server did not say.
	URL string
	// SourceURL is the URL the crawler asked for (metadata.sourceURL).
	SourceURL string
	// Title is metadata.title.
	Title string
	// Markdown is the page's content.
	Markdown string
	// StatusCode is the HTTP status the site answered (metadata.statusCode); 0 when unknown.
	StatusCode int
	// Error is Firecrawl's note on a page it could not read properly (metadata.error).
	Error string
}

// GetCrawl reads the crawl's state and the first reply's worth of pages. Use AllPages to read
// every page.
func (c *Client) GetCrawl(ctx context.Context, id string) (*Status, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("firecrawl: get crawl: %w", err)
	}
	return c.getStatus(ctx, "get crawl "+id, c.statusURL(id))
}

// AllPages reads the crawl's pages, following "next" until there is none, and calls fn once
// per page in the order the server gives them. It returns the state from the last reply, with
// Pages empty. An error from fn stops the reading and is returned as is.
//
// Every request goes to BaseURL: the request carries the API key, so a reply must not be
// able to send it elsewhere. A "next" naming another host or port, credentials, or a path
// other than this crawl's status path is refused with a permanent error (see checkNext).
//
// It is meant for crawls that have stopped. On a crawl still scraping it reads what is there
// and stops at the first reply with no pages, leaving Next set on the returned Status.
func (c *Client) AllPages(ctx context.Context, id string, fn func(Page) error) (*Status, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("firecrawl: get crawl: %w", err)
	}
	op := "get crawl " + id
	next := c.statusURL(id)
	seen := map[string]bool{}
	empty := 0 // replies in a row with no pages
	for {
		seen[next] = true
		st, err := c.getStatus(ctx, op, next)
		if err != nil {
			return nil, err
		}
		for _, p := range st.Pages {
			if err := fn(p); err != nil {
				return nil, err
			}
		}
		if st.Next == "" || len(st.Pages) == 0 && !st.Terminal() {
			st.Pages = nil
			return st, nil
		}
		// A stopped crawl whose replies keep coming empty with a new "next" each time would
		// never end; a few in a row is already more than a sane server sends.
		if len(st.Pages) > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReplies {
			return nil, fmt.Errorf("firecrawl: %s: %d replies in a row with no pages; the server's paging makes no progress", op, empty)
		}
		if next, err = c.checkNext(st.Next, id); err != nil {
			return nil, fmt.Errorf("firecrawl: %s: %w", op, err)
		}
		if seen[next] {
			return nil, fmt.Errorf("firecrawl: %s: next page %q was read already; the server's paging loops", op, next)
		}
	}
}

// maxEmptyReplies is how many page-less replies in a row AllPages reads on a stopped crawl.
const maxEmptyReplies = 3

func (c *Client) statusURL(id string) string { return c.api + "/crawl/" + id }

// checkNext vets a "next" URL from the server and returns the URL to read: BaseURL's scheme
// and host with next's path and query. Only the scheme may differ from BaseURL's, because
// some self-hosted Firecrawl versions write https into next even when served over plain http
// (firecrawl/firecrawl#2275); taking BaseURL's scheme follows such links and never downgrades
// one. Any other difference (host, port, credentials, a path off the crawl's own) is refused.
func (c *Client) checkNext(raw, id string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("refusing malformed next page URL: %w", err)
	}
	samePort := u.Port() == "" || u.Port() == portOf(c.base)
	if (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Hostname(), c.base.Hostname()) ||
		!samePort || u.User != nil {
		return "", fmt.Errorf("refusing next page URL on %q: only %s is trusted with the API key",
			u.Scheme+"://"+u.Host, c.base.Host)
	}
	if want := c.base.EscapedPath() + "/v2/crawl/" + id; u.EscapedPath() != want {
		return "", fmt.Errorf("refusing next page URL with path %q: want %q", u.EscapedPath(), want)
	}
	follow := *c.base
	follow.Path, follow.RawPath = u.Path, u.RawPath
	follow.RawQuery = u.RawQuery
	return follow.String(), nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Wire format of GET /v2/crawl/{id}. Lenient: a field of an unexpected type reads as empty
// rather than failing the whole reply.
type statusReply struct {
	Success     *bool      `json:"success"`
	Status      flexString `json:"status"`
	Total       flexInt    `json:"total"`
	Completed   flexInt    `json:"completed"`
	CreditsUsed flexInt    `json:"creditsUsed"`
	ExpiresAt   flexString `json:"expiresAt"`
	Next        flexString `json:"next"`
	Error       flexString `json:"error"`
	Data        documents  `json:"data"`
}

func (c *Client) getStatus(ctx context.Context, op, u string) (*Status, error) {
	raw, err := c.do(ctx, op, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var r statusReply
	if err := decodeReply(op, raw, &r); err != nil {
		return nil, err
	}
	if r.Status == "" {
		msg := c.clean(string(r.Error))
		if msg == "" {
			msg = "reply has no crawl status"
		}
		return nil, fmt.Errorf("firecrawl: %s: %s", op, msg)
	}
	st := &Status{
		Status:      string(r.Status),
		Total:       int(r.Total),
		Completed:   int(r.Completed),
		CreditsUsed: int(r.CreditsUsed),
		ExpiresAt:   parseTime(string(r.ExpiresAt)),
		Error:       c.clean(string(r.Error)),
		Next:        string(r.Next),
		Pages:       make([]Page, 0, len(r.Data)),
	}
	for _, d := range r.Data {
		st.Pages = append(st.Pages, d.page())
	}
	return st, nil
}

// Cancel stops a crawl (DELETE /v2/crawl/{id}). Pages scraped so far stay readable.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("firecrawl: cancel crawl: %w", err)
	}
	op := "cancel crawl " + id
	raw, err := c.do(ctx, op, http.MethodDelete, c.statusURL(id), nil)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var r struct {
		Success *bool      `json:"success"`
		Error   flexString `json:"error"`
	}
	if err := decodeReply(op, raw, &r); err != nil {
		return err
	}
	if r.Success != nil && !*r.Success {
		return fmt.Errorf("firecrawl: %s: %s", op, cmp.Or(c.clean(string(r.Error)), "server refused"))
	}
	return nil
}

// CrawlError is a page Firecrawl failed to scrape.
type CrawlError struct {
	ID        string
	URL       string
	Error     string
	Timestamp time.Time // zero when the server sent none
}

// ErrorsResponse is the reply of GET /v2/crawl/{id}/errors.
type ErrorsResponse struct {
	Errors []CrawlError
	// RobotsBlocked are URLs robots.txt kept the crawler away from.
	RobotsBlocked []string
}

// Errors lists the pages of a crawl that failed, and those robots.txt blocked.
func (c *Client) Errors(ctx context.Context, id string) (*ErrorsResponse, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("firecrawl: get crawl errors: %w", err)
	}
	op := "get crawl errors " + id
	raw, err := c.do(ctx, op, http.MethodGet, c.statusURL(id)+"/errors", nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Errors []struct {
			ID        flexString `json:"id"`
			Timestamp flexString `json:"timestamp"`
			URL       flexString `json:"url"`
			Error     flexString `json:"error"`
		} `json:"errors"`
		RobotsBlocked []flexString `json:"robotsBlocked"`
	}
	if err := decodeReply(op, raw, &r); err != nil {
		return nil, err
	}
	out := &ErrorsResponse{Errors: make([]CrawlError, 0, len(r.Errors)), RobotsBlocked: make([]string, 0, len(r.RobotsBlocked))}
	for _, e := range r.Errors {
		out.Errors = append(out.Errors, CrawlError{
			ID: string(e.ID), URL: string(e.URL), Error: string(e.Error), Timestamp: parseTime(string(e.Timestamp)),
		})
	}
	for _, u := range r.RobotsBlocked {
		if u != "" {
			out.RobotsBlocked = append(out.RobotsBlocked, string(u))
		}
	}
	return out, nil
}

// checkID keeps crawl ids to what Firecrawl issues (UUIDs), so an id from a webhook body can
// never reshape the request path.
func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return errs.InvalidArgument("crawl_id", "must be 1 to 128 characters")
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return errs.InvalidArgument("crawl_id", "may hold only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// maxReplyBytes bounds what is read from the server. Firecrawl pages its crawl results at
// about 10 MB per reply; anything far beyond is not a reply we want to hold.
const maxReplyBytes = 64 << 20

// do sends one request and returns the body of a 2xx reply.
func (c *Client) do(ctx context.Context, op, method, u string, body []byte) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("firecrawl: %s: build request: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, c.requestError(ctx, op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, c.requestError(ctx, op, fmt.Errorf("read reply: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(op, resp, raw)
	}
	if len(raw) > maxReplyBytes {
		return nil, fmt.Errorf("firecrawl: %s: reply larger than %d bytes", op, maxReplyBytes)
	}
	return raw, nil
}

// requestError classifies a failure to send or receive. The *url.Error from the client names
// the URL (no credentials: Validate and checkNext refuse them) but never the headers.
func (c *Client) requestError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller chose to stop; not something to retry.
		return fmt.Errorf("firecrawl: %s: %w", op, ctxErr)
	}
	// Our own per-request timeout or a network failure: worth another try later.
	return errs.Transient(fmt.Errorf("firecrawl: %s: %w", op, err), 0)
}

func (c *Client) statusError(op string, resp *http.Response, body []byte) error {
	e := &APIError{Op: op, StatusCode: resp.StatusCode, Message: c.clean(serverMessage(body))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode >= 500:
		return errs.Transient(e, retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	// 400, 401, 402, 403, 404, 409, 422 and anything unexpected: the same request would fail
	// the same way.
	return e
}

func decodeReply(op string, raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("firecrawl: %s: malformed reply: %w", op, err)
	}
	return nil
}

// maxMessageRunes caps the server text quoted in an error.
const maxMessageRunes = 300

// clean makes server text fit for an error: the key redacted (before shortening, so no part
// of it survives a cut), whitespace collapsed, length capped.
func (c *Client) clean(msg string) string {
	if c.cfg.APIKey != "" {
		msg = strings.ReplaceAll(msg, c.cfg.APIKey, "[redacted]")
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > maxMessageRunes {
		msg = string(r[:maxMessageRunes]) + "…"
	}
	return msg
}

// serverMessage extracts Firecrawl's {"error": "...", "details": [{"message": ...}]}, or the
// body itself when it is not JSON (a proxy's error page, say).
func serverMessage(body []byte) string {
	var v struct {
		Error   flexString `json:"error"`
		Message flexString `json:"message"`
		Details []struct {
			Message flexString `json:"message"`
		} `json:"details"`
	}
	if json.Unmarshal(body, &v) != nil {
		return strings.ToValidUTF8(string(body), "")
	}
	msg := string(cmp.Or(v.Error, v.Message))
	for _, d := range v.Details {
		if d.Message != "" {
			msg += "; " + string(d.Message)
		}
	}
	return strings.TrimPrefix(msg, "; ")
}
