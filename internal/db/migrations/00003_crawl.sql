-- +goose Up
-- Crawl progress on crawl jobs, and the external crawler's id (Firecrawl) when one runs it.
ALTER TABLE jobs
    ADD COLUMN pages_discovered bigint NOT NULL DEFAULT 0,
    ADD COLUMN pages_fetched    bigint NOT NULL DEFAULT 0,
    ADD COLUMN pages_failed     bigint NOT NULL DEFAULT 0,
    ADD COLUMN external_id      text   NOT NULL DEFAULT '';

-- At most one active crawl per source: a second CreateSource/RefreshSource while one runs gets
-- the running job instead of a second crawl.
CREATE UNIQUE INDEX jobs_one_active_crawl ON jobs (source_id)
    WHERE type = 'crawl' AND status IN ('pending', 'in_progress');

-- One web source per start URL: creating it again finds the existing one instead of a twin
-- that would crawl the same site into a second copy of the same documents.
CREATE UNIQUE INDEX sources_url_key ON sources (url) WHERE url IS NOT NULL;

-- Webhook deliveries already handled, for deduplication (deliveries are retried).
CREATE TABLE webhook_deliveries (
    delivery_id text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP INDEX sources_url_key;
DROP INDEX jobs_one_active_crawl;
ALTER TABLE jobs DROP COLUMN pages_discovered, DROP COLUMN pages_fetched, DROP COLUMN pages_failed,
    DROP COLUMN external_id;
