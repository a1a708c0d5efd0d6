-- Sources whose vectors still have to be purged, oldest first.
SELECT source_id, attempts FROM vector_purges ORDER BY requested_at LIMIT $1;
