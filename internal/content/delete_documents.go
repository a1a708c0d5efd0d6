package content

import (
	"context"

	"github.com/google/uuid"
)

var qDeleteDocuments = mustQuery("delete_documents")

// DeleteDocuments deletes the given documents of a source (their index state and job results
// go with them); ids of other sources are left alone.
func (s *PgStore) DeleteDocuments(ctx context.Context, sourceID string, ids []string) error {
	src, err := parseID("source_id", sourceID)
	if err != nil {
		return err
	}
	uids := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		u, err := parseID("ids", id)
		if err != nil {
			return err
		}
		uids = append(uids, u)
	}
	rows, err := s.db.Query(ctx, qDeleteDocuments, src, uids)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	return translate(err, "source", sourceID)
}
