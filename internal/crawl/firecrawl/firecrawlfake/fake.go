// Package firecrawlfake is an in-process Firecrawl v2 server for tests (httptest, 127.0.0.1).
// It serves a configured site through the crawl endpoints (POST /v2/crawl, GET and DELETE
// /v2/crawl/{id}, GET /v2/crawl/{id}/errors), pages results with absolute "next" URLs, moves
// crawls from "scraping" to a final state on command or after a number of polls, and sends
// signed webhook events to the URL given at start.
//
// It is written from Firecrawl's public API reference, independently of the firecrawl client,
// so that a misreading in one shows up as a failure against the other. Webhook deliveries are
// queued and sent only by Flush, so tests decide when events arrive and need no sleeps; faults
// (a lost event, a duplicate, an unsigned or badly signed delivery, a canned error reply) are
// injected one at a time.
//
// It refuses to deliver webhooks anywhere but loopback addresses.
package firecrawlfake

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Page is one page of the fake site.
type Page struct {
	// URL is the page's address as the crawler finds it (metadata.sourceURL).
	URL string
	// FinalURL is where the page ends up after redirects (metadata.url). Defaults to URL.
	FinalURL string
	// Title and Markdown are the page's content.
	Title, Markdown string
	// StatusCode is the site's HTTP status for the page. Defaults to 200; at 400 and above
	// metadata.error carries the status text.
	StatusCode int
	// ScrapeError, when set, makes the page fail: it is left out of the results and listed by
	// GET /v2/crawl/{id}/errors with this message.
	ScrapeError string
}

// Config configures the fake.
type Config struct {
	// APIKey, when set, must come as "Authorization: Bearer <APIKey>" on every API request;
	// others get 401.
	APIKey string
	// Site is what every crawl finds, in crawl order, before limit, includePaths and
	// excludePaths are applied.
	Site []Page
	// PageSize is the most pages per status reply. Defaults to 10.
	PageSize int
	// PollsToComplete completes a crawl on its Nth status poll (a GET without "skip"). Each
	// poll before that scrapes one more page. 0: crawls complete only through Complete.
	PollsToComplete int
	// WebhookSecret signs deliveries (X-Firecrawl-Signature: sha256=<hex>). Empty: deliveries
	// carry no signature, as from an account with no secret.
	WebhookSecret []byte
	// RobotsBlocked is what the errors endpoint reports as blocked by robots.txt.
	RobotsBlocked []string
}

// Fault changes how one webhook delivery goes.
type Fault int

const (
	// FaultNone delivers normally.
	FaultNone Fault = iota
	// FaultDrop loses the event: it is recorded but never sent.
	FaultDrop
	// FaultDuplicate sends the same bytes (same webhookId) twice, as a retry would.
	FaultDuplicate
	// FaultUnsigned sends the event without X-Firecrawl-Signature.
	FaultUnsigned
	// FaultBadSignature sends the event with a signature made with another secret.
	FaultBadSignature
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDrop:
		return "drop"
	case FaultDuplicate:
		return "duplicate"
	case FaultUnsigned:
		return "unsigned"
	case FaultBadSignature:
		return "bad-signature"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Request is an API request the fake received. The key is not kept, only whether it was right.
type Request struct {
	Method, Path, RawQuery string
	Authorized             bool
}

// Response is a canned reply for RespondNext.
type Response struct {
	Status int
	Body   string
	Header http.Header
}

// Delivery is one webhook send (or, for FaultDrop, one that was not sent).
type Delivery struct {
	// Type is the event type, e.g. "crawl.completed".
	Type string
	// CrawlID is the event's "id"; DeliveryID its "webhookId".
	CrawlID, DeliveryID string
	// URL is where it went.
	URL string
	// Body is the exact bytes sent (and signed).
	Body []byte
	// Signature is the X-Firecrawl-Signature header sent; empty when none was.
	Signature string
	// Fault is what was done to this delivery.
	Fault Fault
	// StatusCode is the receiver's reply; 0 when nothing was sent or sending failed.
	StatusCode int
	// Err is why sending failed, if it did.
	Err error
}

// CrawlInfo is a crawl's state as the fake sees it.
type CrawlInfo struct {
	ID, Status string
	// Total is the pages the crawl will visit; Scraped, those done so far (failed ones too).
	Total, Scraped int
	// Polls is the number of status polls (GETs without "skip").
	Polls int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	srv  *httptest.Server
	hook *http.Client

	flushMu sync.Mutex // keeps Flush calls, and so deliveries, in order

	mu         sync.Mutex
	crawls     map[string]*crawlState
	order      []string
	queue      []*event
	faults     map[string][]Fault // by event type, first in first out
	canned     []Response
	requests   []Request
	starts     [][]byte
	deliveries []Delivery
	sent       map[string]*event // by webhookId, for Redeliver
	nextBase   string
}

type crawlState struct {
	id       string
	status   string
	pages    []Page
	done     int
	polls    int
	hook     *hookSpec
	created  time.Time
	failedAt []time.Time // when each failed page failed, parallel to the failed pages
}

type hookSpec struct {
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	Metadata json.RawMessage   `json:"metadata"`
	Events   []string          `json:"events"`
}

type event struct {
	typ, crawlID, deliveryID, url string
	headers                       map[string]string
	body                          []byte
}

// New starts a fake on 127.0.0.1; it is closed when the test ends.
func New(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	cfg.PageSize = cmp.Or(cfg.PageSize, 10)
	s := &Server{
		cfg:    cfg,
		crawls: map[string]*crawlState{},
		faults: map[string][]Fault{},
		sent:   map[string]*event{},
		hook: &http.Client{
			// Firecrawl gives a receiver 10 seconds.
			Timeout:   10 * time.Second,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/crawl", s.start)
	mux.HandleFunc("GET /v2/crawl/{id}", s.status)
	mux.HandleFunc("DELETE /v2/crawl/{id}", s.cancel)
	mux.HandleFunc("GET /v2/crawl/{id}/errors", s.crawlErrors)
	s.srv = httptest.NewServer(s.front(mux))
	s.nextBase = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// URL is the fake's base URL, for firecrawl.Config.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Client is an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server and drops idle webhook connections. New arranges for it to run at
// the end of the test; calling it twice is harmless.
func (s *Server) Close() {
	s.srv.Close()
	s.hook.CloseIdleConnections()
}

// front records every request, then serves a canned reply if one is queued, then checks the key.
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authorized := s.cfg.APIKey == "" || r.Header.Get("Authorization") == "Bearer "+s.cfg.APIKey
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Authorized: authorized})
		var canned *Response
		if len(s.canned) > 0 {
			canned = &s.canned[0]
			s.canned = s.canned[1:]
		}
		s.mu.Unlock()
		if canned != nil {
			for k, vs := range canned.Header {
				w.Header()[k] = vs
			}
			w.WriteHeader(canned.Status)
			_, _ = io.WriteString(w, canned.Body)
			return
		}
		if !authorized {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "Unauthorized: Invalid token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]any{"success": false, "error": fmt.Sprintf(format, args...)})
}

// knownStartFields are the POST /v2/crawl body fields of the public reference. Like the real
// server, the fake refuses others, so a misspelt field fails loudly instead of being ignored.
var knownStartFields = []string{
	"url", "prompt", "excludePaths", "includePaths", "maxDiscoveryDepth", "sitemap",
	"ignoreQueryParameters", "limit", "crawlEntireDomain", "allowExternalLinks",
	"allowSubdomains", "delay", "maxConcurrency", "webhook", "scrapeOptions",
	"zeroDataRetention",
}

var knownHookEvents = []string{"started", "page", "completed", "failed"}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	s.mu.Lock()
	s.starts = append(s.starts, raw)
	s.mu.Unlock()

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: body is not a JSON object")
		return
	}
	for k := range fields {
		if !slices.Contains(knownStartFields, k) {
			writeError(w, http.StatusBadRequest, "Bad Request: Unrecognized key in body: %q", k)
			return
		}
	}
	var req struct {
		URL          string    `json:"url"`
		Limit        *int      `json:"limit"`
		IncludePaths []string  `json:"includePaths"`
		ExcludePaths []string  `json:"excludePaths"`
		Webhook      *hookSpec `json:"webhook"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: %v", err)
		return
	}
	if u, err := url.Parse(req.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "Bad Request: url must be a valid http(s) URL")
		return
	}
	if req.Limit != nil && *req.Limit < 1 {
		writeError(w, http.StatusBadRequest, "Bad Request: limit must be positive")
		return
	}
	if h := req.Webhook; h != nil {
		if h.URL == "" {
			writeError(w, http.StatusBadRequest, "Bad Request: webhook.url is required")
			return
		}
		for _, e := range h.Events {
			if !slices.Contains(knownHookEvents, e) {
				writeError(w, http.StatusBadRequest, "Bad Request: unknown webhook event %q", e)
				return
			}
		}
	}
	pages, err := selectPages(s.cfg.Site, req.IncludePaths, req.ExcludePaths)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: %v", err)
		return
	}
	if req.Limit != nil && *req.Limit < len(pages) {
		pages = pages[:*req.Limit]
	}

	c := &crawlState{id: uuid.NewString(), status: "scraping", pages: pages, hook: req.Webhook, created: time.Now().UTC()}
	s.mu.Lock()
	s.crawls[c.id] = c
	s.order = append(s.order, c.id)
	s.enqueueLocked(c, "crawl.started", true, nil, "")
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "id": c.id, "url": s.nextBase + "/v2/crawl/" + c.id})
}

func selectPages(site []Page, include, exclude []string) ([]Page, error) {
	compile := func(exprs []string) ([]*regexp.Regexp, error) {
		var out []*regexp.Regexp
		for _, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, fmt.Errorf("invalid path pattern %q: %v", e, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	inc, err := compile(include)
	if err != nil {
		return nil, err
	}
	exc, err := compile(exclude)
	if err != nil {
		return nil, err
	}
	match := func(res []*regexp.Regexp, path string) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(path) })
	}
	var out []Page
	for _, p := range site {
		u, err := url.Parse(p.URL)
		if err != nil {
			continue
		}
		if len(inc) > 0 && !match(inc, u.Path) || match(exc, u.Path) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// results are the crawl's pages scraped so far without error, and the failed ones.
func (c *crawlState) results() (ok, failed []Page) {
	for _, p := range c.pages[:c.done] {
		if p.ScrapeError != "" {
			failed = append(failed, p)
		} else {
			ok = append(ok, p)
		}
	}
	return ok, failed
}

// document is a page as Firecrawl returns it in results and crawl.page events.
func document(p Page) map[string]any {
	code := cmp.Or(p.StatusCode, http.StatusOK)
	meta := map[string]any{
		"title":       p.Title,
		"sourceURL":   p.URL,
		"url":         cmp.Or(p.FinalURL, p.URL),
		"statusCode":  code,
		"contentType": "text/html",
		"scrapeId":    uuid.NewString(),
	}
	if code >= 400 {
		meta["error"] = http.StatusText(code)
	}
	return map[string]any{"markdown": p.Markdown, "metadata": meta}
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *crawlState {
	c := s.crawls[r.PathValue("id")]
	if c == nil {
		writeError(w, http.StatusNotFound, "Crawl job not found")
	}
	return c
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	skip := 0
	q := r.URL.Query()
	if v := q.Get("skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Bad Request: skip must be a non-negative integer")
			return
		}
		skip = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if !q.Has("skip") && c.status == "scraping" {
		c.polls++
		if s.cfg.PollsToComplete > 0 && c.polls >= s.cfg.PollsToComplete {
			s.completeLocked(c)
		} else {
			s.advanceLocked(c, 1)
		}
	}
	ok, _ := c.results()
	end := min(skip+s.cfg.PageSize, len(ok))
	data := []map[string]any{}
	for _, p := range ok[min(skip, end):end] {
		data = append(data, document(p))
	}
	var next any // null on the last reply
	if end < len(ok) || c.status == "scraping" {
		next = fmt.Sprintf("%s/v2/crawl/%s?skip=%d", s.nextBase, c.id, end)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success":     true,
		"status":      c.status,
		"total":       len(c.pages),
		"completed":   len(ok),
		"creditsUsed": c.done,
		"expiresAt":   c.created.Add(24 * time.Hour).Format("2006-01-02T15:04:05.000Z07:00"),
		"next":        next,
		"data":        data,
	})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	if c.status != "scraping" {
		writeError(w, http.StatusConflict, "Crawl is already %s", c.status)
		return
	}
	c.status = "cancelled"
	// Firecrawl's webhook docs: crawl.failed is sent "when crawl fails or is cancelled".
	s.enqueueLocked(c, "crawl.failed", false, nil, "Crawl cancelled")
	writeJSON(w, http.StatusOK, map[string]any{"status": "cancelled"})
}

func (s *Server) crawlErrors(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	_, failed := c.results()
	list := []map[string]any{}
	for i, p := range failed {
		list = append(list, map[string]any{
			"id":        fmt.Sprintf("%s-err-%d", c.id, i),
			"timestamp": c.failedAt[i].Format(time.RFC3339Nano),
			"url":       p.URL,
			"error":     p.ScrapeError,
		})
	}
	blocked := append([]string{}, s.cfg.RobotsBlocked...) // [] rather than null when none
	writeJSON(w, http.StatusOK, map[string]any{"errors": list, "robotsBlocked": blocked})
}

// advanceLocked scrapes up to n more pages, queueing a crawl.page event for each good one.
func (s *Server) advanceLocked(c *crawlState, n int) {
	for ; n > 0 && c.done < len(c.pages); n-- {
		p := c.pages[c.done]
		c.done++
		if p.ScrapeError != "" {
			c.failedAt = append(c.failedAt, time.Now().UTC())
			continue
		}
		s.enqueueLocked(c, "crawl.page", true, []any{document(p)}, "")
	}
}

func (s *Server) completeLocked(c *crawlState) {
	s.advanceLocked(c, len(c.pages))
	c.status = "completed"
	s.enqueueLocked(c, "crawl.completed", true, nil, "")
}

func (s *Server) get(id string) (*crawlState, error) {
	c := s.crawls[id]
	if c == nil {
		return nil, fmt.Errorf("firecrawlfake: no crawl %q", id)
	}
	return c, nil
}

// Advance scrapes up to n more pages of a crawl still scraping.
func (s *Server) Advance(id string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return err
	}
	if c.status != "scraping" {
		return fmt.Errorf("firecrawlfake: crawl %s is %s", id, c.status)
	}
	s.advanceLocked(c, n)
	return nil
}

// Complete scrapes the rest of a crawl and completes it (queueing crawl.page events and
// crawl.completed).
func (s *Server) Complete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return err
	}
	if c.status != "scraping" {
		return fmt.Errorf("firecrawlfake: crawl %s is %s", id, c.status)
	}
	s.completeLocked(c)
	return nil
}

// Fail fails a crawl with reason (queueing crawl.failed). Pages scraped so far stay readable.
func (s *Server) Fail(id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(id)
	if err != nil {
		return err
	}
	if c.status != "scraping" {
		return fmt.Errorf("firecrawlfake: crawl %s is %s", id, c.status)
	}
	c.status = "failed"
	s.enqueueLocked(c, "crawl.failed", false, nil, reason)
	return nil
}

// OnNext applies fault to the next delivery of eventType ("crawl.completed", ...). Faults for
// one type apply in the order given.
func (s *Server) OnNext(eventType string, fault Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[eventType] = append(s.faults[eventType], fault)
}

// RespondNext answers the next API request with resp instead of serving it (before the key is
// checked). Queued replies are used in order.
func (s *Server) RespondNext(resp Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.canned = append(s.canned, resp)
}

// SetNextBase makes "next" (and the start reply's "url") point at base instead of the fake,
// to test that the client refuses to follow it.
func (s *Server) SetNextBase(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextBase = base
}

// enqueueLocked queues a webhook event for c if c asked for webhooks and for this event.
func (s *Server) enqueueLocked(c *crawlState, typ string, success bool, data []any, errMsg string) {
	h := c.hook
	if h == nil {
		return
	}
	if len(h.Events) > 0 && !slices.Contains(h.Events, typ[len("crawl."):]) {
		return
	}
	if data == nil {
		data = []any{}
	}
	metadata := h.Metadata
	if len(metadata) == 0 || string(metadata) == "null" {
		metadata = json.RawMessage("{}")
	}
	ev := &event{typ: typ, crawlID: c.id, deliveryID: uuid.NewString(), url: h.URL, headers: h.Headers}
	body := map[string]any{
		"success":   success,
		"type":      typ,
		"id":        c.id,
		"webhookId": ev.deliveryID,
		"data":      data,
		"metadata":  metadata,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
	}
	if errMsg != "" {
		body["error"] = errMsg
	}
	ev.body, _ = json.Marshal(body) // maps of plain values and a RawMessage that parsed already
	s.queue = append(s.queue, ev)
}

// Pending is the number of queued, undelivered webhook events.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Flush sends the queued webhook events in order, applying faults, and returns what happened
// to each (also kept for Deliveries). A receiver's non-2xx reply is recorded, not retried; use
// Redeliver to retry. The error is ctx's, if it ended.
func (s *Server) Flush(ctx context.Context) ([]Delivery, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	queue := s.queue
	s.queue = nil
	s.mu.Unlock()

	var out []Delivery
	for i, ev := range queue {
		if err := ctx.Err(); err != nil {
			s.mu.Lock()
			s.queue = slices.Concat(queue[i:], s.queue)
			s.mu.Unlock()
			return out, err
		}
		s.mu.Lock()
		fault := FaultNone
		if fs := s.faults[ev.typ]; len(fs) > 0 {
			fault, s.faults[ev.typ] = fs[0], fs[1:]
		}
		s.sent[ev.deliveryID] = ev
		s.mu.Unlock()

		sends := 1
		switch fault {
		case FaultDrop:
			sends = 0
			out = append(out, Delivery{Type: ev.typ, CrawlID: ev.crawlID, DeliveryID: ev.deliveryID, URL: ev.url, Body: ev.body, Fault: fault})
		case FaultDuplicate:
			sends = 2
		}
		for range sends {
			out = append(out, s.send(ctx, ev, fault))
		}
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, out...)
	s.mu.Unlock()
	return out, nil
}

// Redeliver sends an earlier event again, byte for byte and freshly signed, as Firecrawl's
// retry would.
func (s *Server) Redeliver(ctx context.Context, deliveryID string) (Delivery, error) {
	s.mu.Lock()
	ev := s.sent[deliveryID]
	s.mu.Unlock()
	if ev == nil {
		return Delivery{}, fmt.Errorf("firecrawlfake: no delivery %q was flushed", deliveryID)
	}
	d := s.send(ctx, ev, FaultNone)
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	return d, nil
}

func (s *Server) send(ctx context.Context, ev *event, fault Fault) Delivery {
	d := Delivery{Type: ev.typ, CrawlID: ev.crawlID, DeliveryID: ev.deliveryID, URL: ev.url, Body: ev.body, Fault: fault}
	if err := loopbackOnly(ev.url); err != nil {
		d.Err = err
		return d
	}
	switch {
	case fault == FaultUnsigned:
	case fault == FaultBadSignature:
		d.Signature = sign(append([]byte("not-"), s.cfg.WebhookSecret...), ev.body)
	case len(s.cfg.WebhookSecret) > 0:
		d.Signature = sign(s.cfg.WebhookSecret, ev.body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.url, bytes.NewReader(ev.body))
	if err != nil {
		d.Err = err
		return d
	}
	for k, v := range ev.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if d.Signature != "" {
		req.Header.Set("X-Firecrawl-Signature", d.Signature)
	}
	resp, err := s.hook.Do(req)
	if err != nil {
		d.Err = err
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d.StatusCode = resp.StatusCode
	return d
}

func sign(secret, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// loopbackOnly keeps a test's webhook deliveries on this machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("firecrawlfake: webhook URL: %w", err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("firecrawlfake: refusing to deliver a webhook off this machine: " + u.Host)
	}
	return nil
}

// Requests are the API requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// StartBodies are the raw bodies of every POST /v2/crawl received, in order.
func (s *Server) StartBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts)
}

// Deliveries are the webhook deliveries so far, in order (dropped ones included, marked).
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Crawls are the crawls started so far, oldest first.
func (s *Server) Crawls() []CrawlInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CrawlInfo, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.crawls[id].info())
	}
	return out
}

// Crawl is one crawl's state.
func (s *Server) Crawl(id string) (CrawlInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.crawls[id]
	if c == nil {
		return CrawlInfo{}, false
	}
	return c.info(), true
}

func (c *crawlState) info() CrawlInfo {
	return CrawlInfo{ID: c.id, Status: c.status, Total: len(c.pages), Scraped: c.done, Polls: c.polls}
}
