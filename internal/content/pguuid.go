package content

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgUUID is an id as pgx sends it in Postgres's binary form. A uuid.UUID argument goes through
// its driver.Valuer instead: formatted as text, which Postgres parses back (on the ingest and
// worker paths, a measurable share of the CPU spent sending their statements).
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// pgUUIDs is ids as pgUUID sends each.
func pgUUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}
