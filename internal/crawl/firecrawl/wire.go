package firecrawl

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Lenient JSON values. Firecrawl's replies and webhook bodies are read liberally: a field of
// an unexpected type reads as empty instead of failing the whole body, because one odd
// metadata value (a title given as a list, a status code as a string) must not cost a page.
// The fields the caller cannot do without are checked by name after decoding.

// flexString reads a string; a list reads as its first string; anything else as "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = flexString(v)
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(b, &list) == nil {
		for _, item := range list {
			if json.Unmarshal(item, &v) == nil {
				*s = flexString(v)
				return nil
			}
		}
	}
	return nil
}

// flexInt reads an integer, or a number or numeric string that holds one; anything else as 0.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	*n = 0
	var s string
	if json.Unmarshal(b, &s) == nil {
		b = []byte(s)
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
	if err == nil && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
		*n = flexInt(f)
	}
	return nil
}

// flexObject decodes into T when the value is an object and leaves T zero otherwise.
type flexObject[T any] struct{ v T }

func (o *flexObject[T]) UnmarshalJSON(b []byte) error {
	var zero T
	o.v = zero
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &o.v) // every field of T is lenient: this fails only on bad JSON
	}
	return nil
}

// documents reads a list of scraped documents, skipping items that are not objects.
type documents []document

func (d *documents) UnmarshalJSON(b []byte) error {
	*d = nil
	var items []json.RawMessage
	if json.Unmarshal(b, &items) != nil {
		return nil
	}
	for _, item := range items {
		if item = bytes.TrimSpace(item); len(item) == 0 || item[0] != '{' {
			continue
		}
		var doc document
		if err := json.Unmarshal(item, &doc); err != nil {
			return err
		}
		*d = append(*d, doc)
	}
	return nil
}

// document is one scraped page as Firecrawl sends it (crawl results and crawl.page events).
type document struct {
	Markdown flexString              `json:"markdown"`
	Metadata flexObject[docMetadata] `json:"metadata"`
}

type docMetadata struct {
	Title      flexString `json:"title"`
	SourceURL  flexString `json:"sourceURL"`
	URL        flexString `json:"url"`
	StatusCode flexInt    `json:"statusCode"`
	Error      flexString `json:"error"`
}

func (d document) page() Page {
	m := d.Metadata.v
	p := Page{
		URL:        string(m.URL),
		SourceURL:  string(m.SourceURL),
		Title:      string(m.Title),
		Markdown:   string(d.Markdown),
		StatusCode: int(m.StatusCode),
		Error:      string(m.Error),
	}
	if p.URL == "" {
		p.URL = p.SourceURL
	}
	if p.SourceURL == "" {
		p.SourceURL = p.URL
	}
	return p
}

// parseTime reads an RFC 3339 time (with or without fractional seconds); anything else is
// the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
