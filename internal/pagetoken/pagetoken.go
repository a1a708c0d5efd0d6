// Package pagetoken encodes keyset-pagination positions as opaque tokens. Lists are ordered by
// (created_at DESC, id DESC); a token holds the last row's pair plus the filter it was made
// for, so a token cannot be replayed against a different query.
package pagetoken

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// Field is the request field name used in errors.
const Field = "page_token"

const version = 1

// Cursor is the position after which the next page starts.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// Encode makes a token for the cursor. filter is a stable description of the query's filters;
// Decode refuses the token for any other filter.
func Encode(c Cursor, filter string) string {
	buf := make([]byte, 0, 1+8+16+4)
	buf = append(buf, version)
	buf = binary.BigEndian.AppendUint64(buf, uint64(c.CreatedAt.UnixMicro()))
	buf = append(buf, c.ID[:]...)
	buf = binary.BigEndian.AppendUint32(buf, crc32.ChecksumIEEE([]byte(filter)))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode parses a token made by Encode for the same filter. An empty token means the first page
// (ok is false). Any malformed token is an InvalidArgument error naming page_token.
func Decode(token, filter string) (c Cursor, ok bool, err error) {
	if token == "" {
		return Cursor{}, false, nil
	}
	if len(token) > 64 {
		return Cursor{}, false, errs.InvalidArgument(Field, "token is too long")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 1+8+16+4 || raw[0] != version {
		return Cursor{}, false, errs.InvalidArgument(Field, "malformed token; pass the next_page_token of a previous response")
	}
	if binary.BigEndian.Uint32(raw[25:]) != crc32.ChecksumIEEE([]byte(filter)) {
		return Cursor{}, false, errs.InvalidArgument(Field, "token was issued for different filters")
	}
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(raw[1:9]))).UTC()
	copy(c.ID[:], raw[9:25])
	return c, true, nil
}
