-- Holds the source for the rest of the transaction so it cannot be deleted under a document
-- write; KEY SHARE does not block status updates or other writers of documents.
SELECT 1 FROM sources WHERE id = $1 FOR KEY SHARE;
