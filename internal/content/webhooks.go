package content

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

var (
	qRecordWebhookDelivery = mustQuery("record_webhook_delivery")
	qForgetWebhookDelivery = mustQuery("forget_webhook_delivery")
)

// RecordDelivery remembers a webhook delivery id and reports whether it is new; a delivery seen
// before (the sender retried it) must change nothing.
func (s *PgStore) RecordDelivery(ctx context.Context, id string) (bool, error) {
	var got string
	err := s.db.QueryRow(ctx, qRecordWebhookDelivery, id).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, translate(err, "webhook delivery", id)
	}
	return true, nil
}

// ForgetDelivery removes a delivery id whose handling failed, so a retry of it is applied.
func (s *PgStore) ForgetDelivery(ctx context.Context, id string) error {
	rows, err := s.db.Query(ctx, qForgetWebhookDelivery, id)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	return translate(err, "webhook delivery", id)
}

var qGetSourceByURL = mustQuery("get_source_by_url")

// SourceByURL returns the web source whose start URL is url; errs.NotFound when there is none.
func (s *PgStore) SourceByURL(ctx context.Context, url string) (*Source, error) {
	src, err := scanSource(s.db.QueryRow(ctx, qGetSourceByURL, url))
	return src, translate(err, "source with url", url)
}
