-- +goose Up
-- Sources: a web site to crawl, or an upload source fed only by IngestDocuments (url IS NULL).
CREATE TABLE sources (
    id            uuid PRIMARY KEY,
    name          text        NOT NULL,
    url           text,
    crawler       text        NOT NULL DEFAULT 'builtin',
    crawl_options jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL,
    error         text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sources_status_check CHECK (status IN ('pending', 'crawling', 'processing', 'ready', 'failed'))
);
CREATE INDEX sources_created_idx ON sources (created_at DESC, id DESC);

-- Documents belong to one source and are keyed inside it by uri: the final URL of a crawled page
-- or the name given at upload. Re-saving the same uri updates the row instead of adding one.
CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    source_id    uuid        NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    uri          text        NOT NULL,
    title        text        NOT NULL DEFAULT '',
    content_type text        NOT NULL,
    content      text        NOT NULL,
    content_hash text        NOT NULL,
    size_bytes   bigint      NOT NULL,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_source_uri_key UNIQUE (source_id, uri)
);
CREATE INDEX documents_source_created_idx ON documents (source_id, created_at DESC, id DESC);

-- Jobs: the durable record of every crawl and processing run. Postgres is the truth; the queue
-- only delivers. version increases by one on every write so watchers can order snapshots.
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    type             text        NOT NULL,
    status           text        NOT NULL,
    source_id        uuid        NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    document_ids     uuid[]      NOT NULL DEFAULT '{}',
    chunk_count      bigint      NOT NULL DEFAULT 0,
    processed_count  bigint      NOT NULL DEFAULT 0,
    error_count      bigint      NOT NULL DEFAULT 0,
    queue_message_id text        NOT NULL DEFAULT '',
    error            text        NOT NULL DEFAULT '',
    retry_of         uuid        REFERENCES jobs (id) ON DELETE SET NULL,
    version          bigint      NOT NULL DEFAULT 1,
    timeout_seconds  bigint      NOT NULL DEFAULT 3600,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT jobs_type_check CHECK (type IN ('crawl', 'process')),
    CONSTRAINT jobs_status_check CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    CONSTRAINT jobs_counts_check CHECK (chunk_count >= 0 AND processed_count >= 0 AND error_count >= 0)
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_source_idx ON jobs (source_id, created_at DESC, id DESC);
CREATE INDEX jobs_active_idx ON jobs (status, updated_at) WHERE status IN ('pending', 'in_progress');
-- A job is retried at most once, so retries form a chain and a double-clicked RetryJob cannot
-- start two jobs for the same documents.
CREATE UNIQUE INDEX jobs_retry_of_key ON jobs (retry_of);

-- Per-document results of a job: one row per (job, document), written as the worker goes.
CREATE TABLE job_documents (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    document_id uuid        NOT NULL,
    status      text        NOT NULL DEFAULT 'pending',
    chunk_count bigint      NOT NULL DEFAULT 0,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text        NOT NULL DEFAULT '',
    error_kind  text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, document_id),
    CONSTRAINT job_documents_status_check CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
    CONSTRAINT job_documents_kind_check CHECK (error_kind IN ('', 'transient', 'permanent'))
);

-- +goose Down
DROP TABLE job_documents;
DROP TABLE jobs;
DROP TABLE documents;
DROP TABLE sources;
