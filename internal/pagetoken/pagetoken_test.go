package pagetoken

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := Cursor{CreatedAt: time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.UTC), ID: uuid.New()}
	tok := Encode(c, "source=a")
	got, ok, err := Decode(tok, "source=a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, c, got)
}

func TestEmptyIsFirstPage(t *testing.T) {
	t.Parallel()
	_, ok, err := Decode("", "x")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestRejects(t *testing.T) {
	t.Parallel()
	good := Encode(Cursor{CreatedAt: time.Now(), ID: uuid.New()}, "f")
	for name, tok := range map[string]string{
		"not base64":   "!!!",
		"short":        "AAAA",
		"other filter": good,
		"too long":     good + good + good,
	} {
		_, _, err := Decode(tok, map[bool]string{true: "g", false: "f"}[name == "other filter"])
		require.Error(t, err, name)
		var ia *errs.InvalidArgumentError
		require.True(t, errors.As(err, &ia), name)
		require.Equal(t, Field, ia.Field, name)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Cursor{CreatedAt: time.Unix(1, 0), ID: uuid.Nil}, ""), "")
	f.Add("", "")
	f.Add("AQ", "x")
	f.Fuzz(func(t *testing.T, tok, filter string) {
		c, ok, err := Decode(tok, filter)
		if err != nil {
			require.ErrorIs(t, err, errs.ErrInvalidArgument)
			return
		}
		if ok {
			// Whatever decodes must re-encode to the same token.
			require.Equal(t, tok, Encode(c, filter))
		}
	})
}
