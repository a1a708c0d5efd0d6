SELECT status FROM sources WHERE id = $1;
