// Package content owns sources (a web site to crawl, or an upload source) and their documents in
// Postgres: validation, the source state machine, and keyset-paginated reads. It knows nothing
// about gRPC, jobs, queues or vectors; callers build those on top of the Store seam.
package content

import (
	"context"
	"time"
)

// SourceStatus is where a source is in its life; see CanTransition for the legal moves.
type SourceStatus string

// Source statuses.
const (
	SourceStatusPending    SourceStatus = "pending"
	SourceStatusCrawling   SourceStatus = "crawling"
	SourceStatusProcessing SourceStatus = "processing"
	SourceStatusReady      SourceStatus = "ready"
	SourceStatusFailed     SourceStatus = "failed"
)

// SourceStatuses lists every status, in life order.
var SourceStatuses = []SourceStatus{
	SourceStatusPending, SourceStatusCrawling, SourceStatusProcessing, SourceStatusReady, SourceStatusFailed,
}

// Valid reports whether s is one of the known statuses.
func (s SourceStatus) Valid() bool {
	_, ok := sourceTransitions[s]
	return ok
}

// Crawler names the crawler that fetches a web source.
type Crawler string

// Crawlers.
const (
	CrawlerBuiltin   Crawler = "builtin"
	CrawlerFirecrawl Crawler = "firecrawl"
)

// Valid reports whether c is a known crawler.
func (c Crawler) Valid() bool { return c == CrawlerBuiltin || c == CrawlerFirecrawl }

// Content types a document may have.
const (
	ContentTypeText     = "text/plain"
	ContentTypeMarkdown = "text/markdown"
	ContentTypeHTML     = "text/html"
)

// Limits. Requests beyond them are refused with an InvalidArgument error naming the field, except
// page sizes above MaxPageSize, which are lowered to it.
const (
	MaxNameLength           = 200     // runes in a source name
	MaxURLLength            = 2048    // bytes in a source URL
	DefaultCrawlLimit       = 1000    // CrawlOptions.Limit when zero
	MaxCrawlLimit           = 100_000 // pages per crawl
	MaxCrawlDepth           = 100
	MaxCrawlPatterns        = 100      // entries in IncludePaths or ExcludePaths
	MaxURILength            = 2048     // bytes in a document uri
	MaxTitleLength          = 2048     // bytes in a document title
	MaxMetadataBytes        = 64 << 10 // bytes of keys plus values in a document's metadata
	DefaultMaxDocumentBytes = 10 << 20 // bytes of content per document; see WithMaxDocumentBytes
	MaxDocumentsPerUpsert   = 1000
	MaxIDsPerGet            = 1000 // ids in one GetDocumentsByIDs call
	DefaultPageSize         = 50
	MaxPageSize             = 1000
	maxSourceErrorBytes     = 4096
)

// CrawlOptions tune a crawl. They are stored with the source as jsonb.
type CrawlOptions struct {
	// Limit is the most pages one crawl saves, 1..MaxCrawlLimit. Defaults to DefaultCrawlLimit.
	Limit int `json:"limit"`
	// MaxDepth is how many links deep the crawl follows from the start URL, 0..MaxCrawlDepth;
	// 0 means no depth limit (Limit still applies).
	MaxDepth int `json:"max_depth,omitempty"`
	// IncludePaths are regular expressions (Go syntax) over URL paths; when any are given, only
	// matching pages are crawled.
	IncludePaths []string `json:"include_paths,omitempty"`
	// ExcludePaths are regular expressions over URL paths; matching pages are skipped.
	ExcludePaths []string `json:"exclude_paths,omitempty"`
	// AllowSubdomains lets the crawl leave the start host for its subdomains.
	AllowSubdomains bool `json:"allow_subdomains,omitempty"`
	// IgnoreQueryParameters treats URLs that differ only in their query as one page.
	IgnoreQueryParameters bool `json:"ignore_query_parameters,omitempty"`
}

// Source is a web site to crawl, or (URL == "") an upload source fed only by uploads.
type Source struct {
	ID           string
	Name         string
	URL          string // "" for an upload source
	Crawler      Crawler
	CrawlOptions CrawlOptions
	Status       SourceStatus
	Error        string // why the last run failed, or problems a ready source had; "" if none
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// DocumentCount, ChunkCount and the last crawl are read with the source. For DeleteSource
	// they describe what was deleted with it.
	DocumentCount int64
	// ChunkCount is the sum of the chunk counts in its documents' index states: the chunks
	// stored for it now, which a search could return.
	ChunkCount int64
	// LastCrawlJobID is the newest finished crawl job of the source, "" if none has finished;
	// LastCrawlAt is when it finished (zero if none).
	LastCrawlJobID string
	LastCrawlAt    time.Time
}

// DocumentSummary is a document without its content: what lists return.
type DocumentSummary struct {
	ID       string
	SourceID string
	// URI is the final URL of a crawled page, or the name given at upload; unique in its source.
	URI         string
	Title       string
	ContentType string // ContentTypeText, ContentTypeMarkdown or ContentTypeHTML
	ContentHash string // hex SHA-256 of the content
	SizeBytes   int64  // bytes of content
	Metadata    map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time // moves only when something stored changed
}

// Document is a document with its content.
type Document struct {
	DocumentSummary
	Content string
}

// DocumentInput is one document to save.
type DocumentInput struct {
	URI   string
	Title string
	// ContentType is ContentTypeText, ContentTypeMarkdown or ContentTypeHTML (parameters such as
	// "; charset=utf-8" are dropped). Empty means inferred from the uri's extension: .md and
	// .markdown are markdown, .html and .htm are HTML, anything else is plain text.
	ContentType string
	Content     string // valid UTF-8 without NUL bytes
	Metadata    map[string]string
}

// UpsertedDocument is one saved document and what the save did to it.
type UpsertedDocument struct {
	// Document is the stored row. Its Content is the input's content.
	Document *Document
	// Created is true when the uri was new in the source.
	Created bool
	// Changed is true when the row was created or any stored field (content, title, content type,
	// metadata) differed; false means the save was a no-op and UpdatedAt did not move.
	Changed bool
}

// CreateSourceParams are the inputs of CreateSource.
type CreateSourceParams struct {
	// Name is at most MaxNameLength runes; empty means the URL's host, or "upload".
	Name         string
	URL          string // absolute http(s) URL; "" makes an upload source
	Crawler      Crawler
	CrawlOptions CrawlOptions
}

// GetSourceParams are the inputs of GetSource.
type GetSourceParams struct{ ID string }

// ListSourcesParams are the inputs of ListSources.
type ListSourcesParams struct {
	Status    SourceStatus // "" lists every status
	PageSize  int          // 0 means DefaultPageSize; more than MaxPageSize means MaxPageSize
	PageToken string       // "" for the first page, else a previous call's next page token
}

// DeleteSourceParams are the inputs of DeleteSource.
type DeleteSourceParams struct{ ID string }

// UpdateSourceStatusParams are the inputs of UpdateSourceStatus.
type UpdateSourceStatusParams struct {
	ID     string
	Status SourceStatus
	// Error replaces the source's error text ("" clears it). It is made valid UTF-8 without NUL
	// bytes and cut to 4 KiB, since it often quotes a remote server.
	Error string
}

// UpsertDocumentsParams are the inputs of UpsertDocuments.
type UpsertDocumentsParams struct {
	SourceID  string
	Documents []DocumentInput // at most MaxDocumentsPerUpsert, uris distinct
}

// GetDocumentParams are the inputs of GetDocument.
type GetDocumentParams struct{ ID string }

// ListDocumentsParams are the inputs of ListDocuments.
type ListDocumentsParams struct {
	SourceID  string // required
	PageSize  int    // 0 means DefaultPageSize; more than MaxPageSize means MaxPageSize
	PageToken string
}

// GetDocumentsByIDsParams are the inputs of GetDocumentsByIDs.
type GetDocumentsByIDsParams struct {
	IDs []string // at most MaxIDsPerGet
}

// Store is the seam between the domain and Postgres. Every method validates its params and
// returns errors from package errs: NotFound, InvalidArgument naming the API field in snake_case
// (e.g. "crawl_options.limit", "documents[3].content"), FailedPrecondition for an illegal status
// change, ErrUnavailable when Postgres cannot be reached.
type Store interface {
	// CreateSource saves a new source in status pending.
	CreateSource(ctx context.Context, params *CreateSourceParams) (*Source, error)
	GetSource(ctx context.Context, params *GetSourceParams) (*Source, error)
	// SourceByURL returns the web source whose start URL is url (one per URL).
	SourceByURL(ctx context.Context, url string) (*Source, error)
	// ListSources returns a page of sources, newest first, and the token of the next page
	// ("" after the last page).
	ListSources(ctx context.Context, params *ListSourcesParams) ([]*Source, string, error)
	// DeleteSource deletes a source with its documents (and, by the schema, its jobs) and returns
	// what it was.
	DeleteSource(ctx context.Context, params *DeleteSourceParams) (*Source, error)
	// UpdateSourceStatus moves a source to a new status if CanTransition allows it; otherwise it
	// writes nothing and returns an error wrapping errs.ErrFailedPrecondition.
	UpdateSourceStatus(ctx context.Context, params *UpdateSourceStatusParams) (*Source, error)
	// MoveSourceStatus is UpdateSourceStatus without the source read back, writing nothing when
	// the source already has the status and error; changed says whether it wrote.
	MoveSourceStatus(ctx context.Context, params *UpdateSourceStatusParams) (changed bool, err error)
	// UpsertDocuments saves documents by (source, uri) in one transaction: all or nothing. The
	// result is in input order.
	UpsertDocuments(ctx context.Context, params *UpsertDocumentsParams) ([]UpsertedDocument, error)
	GetDocument(ctx context.Context, params *GetDocumentParams) (*Document, error)
	// ListDocuments returns a page of a source's documents without content, newest first.
	ListDocuments(ctx context.Context, params *ListDocumentsParams) ([]*DocumentSummary, string, error)
	// GetDocumentsByIDs returns the documents that exist among the ids, in the ids' order;
	// missing ids are left out.
	GetDocumentsByIDs(ctx context.Context, params *GetDocumentsByIDsParams) ([]*Document, error)
}
