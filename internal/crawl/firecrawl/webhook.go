package firecrawl

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// SignatureHeader carries the webhook body's signature: "sha256=" and the lower-case hex of
// HMAC-SHA256(secret, raw body).
const SignatureHeader = "X-Firecrawl-Signature"

const signaturePrefix = "sha256="

// Signature failures. A handler answers all of them with 401 and acts on nothing.
var (
	// ErrNoSecret: no webhook secret is configured, so nothing can be verified. Refusing every
	// delivery beats accepting forged ones.
	ErrNoSecret = errors.New("firecrawl: no webhook secret configured")
	// ErrMissingSignature: the request has no (or an empty) X-Firecrawl-Signature header.
	ErrMissingSignature = errors.New("firecrawl: webhook signature missing")
	// ErrBadSignature: the header is malformed or does not match the body.
	ErrBadSignature = errors.New("firecrawl: webhook signature invalid")
)

// macEqual compares MACs in constant time. A variable only so a test can check that this,
// and not an early-exit comparison, decides.
var macEqual = hmac.Equal

// Sign returns the X-Firecrawl-Signature value for body: "sha256=<hex>".
func Sign(secret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks header (the X-Firecrawl-Signature value) against body, which must
// be the raw request body exactly as received. It returns nil, ErrNoSecret,
// ErrMissingSignature, or an error matching ErrBadSignature that says what was wrong with the
// header (never what the right signature would be). The MACs are compared in constant time.
func VerifySignature(secret, body []byte, header string) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrMissingSignature
	}
	digits, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: want the form sha256=<hex>", ErrBadSignature)
	}
	// The length is public (it is the hash's), so checking it first leaks nothing.
	if len(digits) != 2*sha256.Size {
		return fmt.Errorf("%w: want %d hex digits, got %d", ErrBadSignature, 2*sha256.Size, len(digits))
	}
	got, err := hex.DecodeString(digits)
	if err != nil {
		return fmt.Errorf("%w: not hexadecimal", ErrBadSignature)
	}
	if !macEqual(mac(secret, body), got) {
		return ErrBadSignature
	}
	return nil
}

// MaxEventBytes is the largest webhook body accepted. A crawl.page event carries one page;
// Firecrawl's own replies page at about 10 MB.
const MaxEventBytes = 10 << 20

var (
	// ErrEventTooLarge: the body is over MaxEventBytes.
	ErrEventTooLarge = errors.New("firecrawl: webhook body larger than 10 MiB")
	// ErrMalformedEvent: the body is not a webhook event (bad JSON, not an object, a required
	// field missing or unusable). Errors matching it say which.
	ErrMalformedEvent = errors.New("firecrawl: malformed webhook event")
)

// ReadBody reads a webhook request body of at most MaxEventBytes, for VerifySignature and
// ParseEvent. A longer body gives ErrEventTooLarge without being read to the end.
func ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxEventBytes+1))
	if err != nil {
		return nil, fmt.Errorf("firecrawl: read webhook body: %w", err)
	}
	if len(b) > MaxEventBytes {
		return nil, ErrEventTooLarge
	}
	return b, nil
}

// EventType is a webhook event's "type".
type EventType string

// The crawl events.
const (
	EventStarted   EventType = "crawl.started"
	EventPage      EventType = "crawl.page"
	EventCompleted EventType = "crawl.completed"
	// EventFailed is sent when a crawl fails or, per Firecrawl's docs, is cancelled.
	EventFailed EventType = "crawl.failed"
)

// Event is one webhook delivery.
type Event struct {
	// Type is "crawl.started", "crawl.page", "crawl.completed", "crawl.failed", or another
	// type Firecrawl may add (see Known).
	Type EventType
	// CrawlID is the crawl's id ("id"), as StartCrawl returned it.
	CrawlID string
	// DeliveryID identifies this delivery ("webhookId"); Firecrawl sends the same value when
	// it retries, so it is the key to deduplicate on. Empty when the sender sent none.
	DeliveryID string
	// Success is false for a failure ("success"). When the body does not say, it is false for
	// crawl.failed and for events with an error, true otherwise.
	Success bool
	// Pages are the scraped pages in "data" (crawl.page carries one; the others none).
	Pages []Page
	// Metadata is the webhook metadata given to StartCrawl, echoed back. Numbers come as
	// json.Number so that large ids survive.
	Metadata map[string]any
	// Error is the failure's reason ("error").
	Error string
	// Timestamp is when the event happened ("timestamp"); zero when absent.
	Timestamp time.Time
}

// Known reports whether the event is one of the four crawl events. Others should be
// acknowledged (2xx, so Firecrawl does not retry them) and ignored.
func (e *Event) Known() bool {
	switch e.Type {
	case EventStarted, EventPage, EventCompleted, EventFailed:
		return true
	}
	return false
}

// maxDeliveryIDLen bounds "webhookId" (a UUID in practice), since callers store it as a key.
const maxDeliveryIDLen = 256

// ParseEvent reads a webhook body. It is liberal about everything but "type" and "id",
// which must be non-empty strings (and the id a usable crawl id): unknown fields are ignored
// and optional fields of an unexpected type read as empty. Verify the signature first.
func ParseEvent(body []byte) (*Event, error) {
	if len(body) > MaxEventBytes {
		return nil, ErrEventTooLarge
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedEvent)
	}
	var raw struct {
		Type      json.RawMessage `json:"type"`
		ID        json.RawMessage `json:"id"`
		WebhookID json.RawMessage `json:"webhookId"`
		Success   json.RawMessage `json:"success"`
		Data      documents       `json:"data"`
		Metadata  json.RawMessage `json:"metadata"`
		Error     flexString      `json:"error"`
		Timestamp flexString      `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	typ, err := requiredString("type", raw.Type)
	if err != nil {
		return nil, err
	}
	id, err := requiredString("id", raw.ID)
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("%w: id: %v", ErrMalformedEvent, err)
	}
	ev := &Event{
		Type:      EventType(typ),
		CrawlID:   id,
		Error:     string(raw.Error),
		Timestamp: parseTime(string(raw.Timestamp)),
	}
	if len(raw.WebhookID) > 0 && string(raw.WebhookID) != "null" {
		// Optional, but when present it is a dedup key: a wrong type is an error, not "".
		if err := json.Unmarshal(raw.WebhookID, &ev.DeliveryID); err != nil {
			return nil, fmt.Errorf("%w: webhookId is not a string", ErrMalformedEvent)
		}
		if len(ev.DeliveryID) > maxDeliveryIDLen {
			return nil, fmt.Errorf("%w: webhookId longer than %d bytes", ErrMalformedEvent, maxDeliveryIDLen)
		}
	}
	switch string(bytes.TrimSpace(raw.Success)) {
	case "true":
		ev.Success = true
	case "false":
		ev.Success = false
	default:
		ev.Success = ev.Type != EventFailed && ev.Error == ""
	}
	for _, d := range raw.Data {
		ev.Pages = append(ev.Pages, d.page())
	}
	if m := bytes.TrimSpace(raw.Metadata); len(m) > 0 && m[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.UseNumber()
		_ = dec.Decode(&ev.Metadata) // an object that parsed once parses again
	}
	return ev, nil
}

func requiredString(name string, v json.RawMessage) (string, error) {
	var s string
	if len(v) == 0 || json.Unmarshal(v, &s) != nil || strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%w: %q must be a non-empty string", ErrMalformedEvent, name)
	}
	return s, nil
}
