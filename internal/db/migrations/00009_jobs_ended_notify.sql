-- +goose Up
-- Tell workers at once when a job ends under them: a cancel (CancelJob), a timeout failure (the
-- reconciler) or a delete (the job's source deleted, or the job itself). Each such change sends
-- the job's id on the channel pipeline_job_ended when its transaction commits; a worker that
-- works on the job stops before its next document (worker/cancel.go). This is only the fast
-- path: a worker also reads the job's status with every group of documents it records, so a
-- notification missed (the listening connection down) delays the stop, never prevents it.
-- A trigger rather than a NOTIFY in each statement, so that no path that ends a job can forget
-- it. It fires only on writes that name the status column, and the WHEN clause keeps the
-- function call to the changes that end a job.
-- +goose StatementBegin
CREATE FUNCTION jobs_notify_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('pipeline_job_ended', OLD.id::text);
    ELSE
        PERFORM pg_notify('pipeline_job_ended', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_notify_ended
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('cancelled', 'failed') AND OLD.status IN ('pending', 'in_progress'))
    EXECUTE FUNCTION jobs_notify_ended();
CREATE TRIGGER jobs_notify_deleted
    AFTER DELETE ON jobs
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'in_progress'))
    EXECUTE FUNCTION jobs_notify_ended();

-- +goose Down
DROP TRIGGER jobs_notify_deleted ON jobs;
DROP TRIGGER jobs_notify_ended ON jobs;
DROP FUNCTION jobs_notify_ended();
