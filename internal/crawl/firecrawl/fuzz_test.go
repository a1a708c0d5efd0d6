package firecrawl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
)

// Seeds beyond these are in testdata/fuzz/FuzzParseEvent.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{sampleStarted, samplePage, sampleCompleted, sampleFailed} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := firecrawl.ParseEvent(body)
		if err != nil {
			require.Nil(t, ev)
			require.True(t, errors.Is(err, firecrawl.ErrMalformedEvent) || errors.Is(err, firecrawl.ErrEventTooLarge),
				"unexpected error kind: %v", err)
			return
		}
		require.LessOrEqual(t, len(body), firecrawl.MaxEventBytes)
		require.NotEmpty(t, strings.TrimSpace(string(ev.Type)))
		require.NotEmpty(t, ev.CrawlID)
		require.LessOrEqual(t, len(ev.DeliveryID), 256)
		again, err := firecrawl.ParseEvent(body)
		require.NoError(t, err)
		require.Equal(t, ev, again, "parsing is deterministic")
	})
}

// Seeds beyond these are in testdata/fuzz/FuzzVerifySignature.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(vectorKey), []byte(vectorBody), "sha256="+vectorMAC)
	f.Add([]byte("s"), []byte(`{"type":"crawl.page","id":"c1"}`), "sha256=00")
	f.Add([]byte{}, []byte{}, "")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		err := firecrawl.VerifySignature(secret, body, header)
		switch {
		case err == nil:
			require.NotEmpty(t, secret)
			require.True(t, strings.EqualFold(strings.TrimSpace(header), firecrawl.Sign(secret, body)),
				"accepted a header that is not the body's signature: %q", header)
		case len(secret) == 0:
			require.ErrorIs(t, err, firecrawl.ErrNoSecret)
		default:
			require.True(t, errors.Is(err, firecrawl.ErrMissingSignature) || errors.Is(err, firecrawl.ErrBadSignature),
				"unexpected error kind: %v", err)
		}
		if len(secret) > 0 {
			require.NoError(t, firecrawl.VerifySignature(secret, body, firecrawl.Sign(secret, body)))
		}
	})
}
