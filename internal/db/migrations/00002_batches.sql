-- +goose Up
-- A processing job's documents are split into batches of batch_size; each batch is one queue
-- message. A worker claims a batch here with a lease before working on it, so a duplicate or
-- late delivery finds it claimed or done and does nothing. Postgres is the truth; the queue
-- only delivers.
CREATE TABLE job_batches (
    id               uuid PRIMARY KEY,
    job_id           uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq              integer     NOT NULL,
    document_ids     uuid[]      NOT NULL,
    state            text        NOT NULL DEFAULT 'queued',
    -- enqueues counts messages sent for the batch; each gets a fresh message id, so a re-enqueue
    -- is never mistaken for a duplicate.
    enqueues         integer     NOT NULL DEFAULT 0,
    queue_message_id text        NOT NULL DEFAULT '',
    enqueued_at      timestamptz,
    claims           integer     NOT NULL DEFAULT 0,
    worker           text        NOT NULL DEFAULT '',
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT job_batches_job_seq_key UNIQUE (job_id, seq),
    CONSTRAINT job_batches_state_check CHECK (state IN ('queued', 'running', 'done'))
);
CREATE INDEX job_batches_open_idx ON job_batches (state, lease_until) WHERE state IN ('queued', 'running');

-- What a document's vectors were last built from. A document whose content hash and settings
-- fingerprint (chunker + embedder) match is skipped by processing: nothing would change.
CREATE TABLE document_index_state (
    document_id  uuid PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    content_hash text        NOT NULL,
    fingerprint  text        NOT NULL,
    chunk_count  bigint      NOT NULL,
    indexed_at   timestamptz NOT NULL DEFAULT now()
);

-- Sources deleted from Postgres whose vectors may still be in the vector store. DeleteSource
-- writes the row in the same statement that deletes the source, so a vector store that is down
-- at that moment cannot leave vectors behind for good: the reconciler purges until it succeeds.
CREATE TABLE vector_purges (
    source_id    uuid PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE vector_purges;
DROP TABLE document_index_state;
DROP TABLE job_batches;
