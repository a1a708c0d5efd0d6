-- Delete documents of one source by id (pages that disappeared from a re-crawled site).
DELETE FROM documents WHERE source_id = $1 AND id = ANY($2::uuid[]);
