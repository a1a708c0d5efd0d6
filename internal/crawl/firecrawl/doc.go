// Package firecrawl is a client of Firecrawl's v2 crawl API (hosted at api.firecrawl.dev or
// self-hosted) and the pieces of its webhook: signature check and event parsing.
//
// It owns the wire format: request and reply field names, paging over "next", and the mapping
// of HTTP failures onto errs (transient for 429, 5xx and network trouble, permanent otherwise).
// It must not know about jobs, sources, documents or storage: the caller decides what a page,
// an event or a failed crawl means, and deduplicates webhook deliveries on Event.DeliveryID.
//
// The client does not retry. A transient error carries the server's Retry-After, and the job
// queue retries with backoff; retrying here too would multiply attempts and hide the wait.
//
// Field names follow Firecrawl's public v2 API reference (docs.firecrawl.dev/api-reference:
// crawl-post, crawl-get, crawl-delete, crawl-get-errors, webhook-crawl-*) and its webhook
// pages (docs.firecrawl.dev/webhooks/events, /webhooks/security).
package firecrawl
