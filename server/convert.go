package server

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// parseID parses an id the validator has already checked; the error names the field anyway, so
// a caller that skipped validation still gets a clear InvalidArgument.
func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, errs.InvalidArgument(field, "must be a UUID, got %q", s)
	}
	return id, nil
}

func optionalID(field, s string) (uuid.NullUUID, error) {
	if s == "" {
		return uuid.NullUUID{}, nil
	}
	id, err := parseID(field, s)
	return uuid.NullUUID{UUID: id, Valid: err == nil}, err
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsPtr(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return ts(*t)
}

var jobStatusToProto = map[jobs.Status]pipelinev1.JobStatus{
	jobs.StatusPending:    pipelinev1.JobStatus_JOB_STATUS_PENDING,
	jobs.StatusInProgress: pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS,
	jobs.StatusCompleted:  pipelinev1.JobStatus_JOB_STATUS_COMPLETED,
	jobs.StatusFailed:     pipelinev1.JobStatus_JOB_STATUS_FAILED,
	jobs.StatusCancelled:  pipelinev1.JobStatus_JOB_STATUS_CANCELLED,
}

var jobTypeToProto = map[jobs.Type]pipelinev1.JobType{
	jobs.TypeCrawl:   pipelinev1.JobType_JOB_TYPE_CRAWL,
	jobs.TypeProcess: pipelinev1.JobType_JOB_TYPE_PROCESS,
}

var docStatusToProto = map[jobs.DocStatus]pipelinev1.DocumentResultStatus{
	jobs.DocPending:   pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_PENDING,
	jobs.DocSucceeded: pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED,
	jobs.DocFailed:    pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED,
	jobs.DocSkipped:   pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED,
}

var errorKindToProto = map[jobs.ErrorKind]pipelinev1.ErrorKind{
	"":                 pipelinev1.ErrorKind_ERROR_KIND_UNSPECIFIED,
	jobs.KindTransient: pipelinev1.ErrorKind_ERROR_KIND_TRANSIENT,
	jobs.KindPermanent: pipelinev1.ErrorKind_ERROR_KIND_PERMANENT,
}

// reverse builds the proto-to-domain map of a domain-to-proto map.
func reverse[K comparable, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

var (
	jobStatusFromProto = reverse(jobStatusToProto)
	jobTypeFromProto   = reverse(jobTypeToProto)
)

func jobToProto(j *jobs.Job) *pipelinev1.Job {
	if j == nil {
		return nil
	}
	out := &pipelinev1.Job{
		JobId:    j.ID.String(),
		Type:     jobTypeToProto[j.Type],
		Status:   jobStatusToProto[j.Status],
		SourceId: j.SourceID.String(),
		Processing: &pipelinev1.ProcessingDetails{
			DocumentCount:  int64(len(j.DocumentIDs)),
			ChunkCount:     j.ChunkCount,
			ProcessedCount: j.ProcessedCount,
			ErrorCount:     j.ErrorCount,
		},
		QueueMessageId: j.QueueMessageID,
		Error:          j.Error,
		Version:        j.Version,
		Timeout:        durationpb.New(j.Timeout),
		CreateTime:     ts(j.CreatedAt),
		UpdateTime:     ts(j.UpdatedAt),
		StartTime:      tsPtr(j.StartedAt),
		FinishTime:     tsPtr(j.FinishedAt),
	}
	if j.RetryOf.Valid {
		out.RetryOfJobId = j.RetryOf.UUID.String()
	}
	if j.Type == jobs.TypeCrawl {
		out.Processing = nil
		out.Crawl = &pipelinev1.CrawlDetails{
			PagesDiscovered: j.Crawl.Discovered,
			PagesFetched:    j.Crawl.Fetched,
			PagesFailed:     j.Crawl.Failed,
			ExternalId:      j.ExternalID,
		}
	}
	return out
}

func documentResultToProto(r *jobs.DocumentResult) *pipelinev1.DocumentResult {
	return &pipelinev1.DocumentResult{
		DocumentId: r.DocumentID.String(),
		Status:     docStatusToProto[r.Status],
		ChunkCount: r.ChunkCount,
		Attempts:   r.Attempts,
		LastError:  r.LastError,
		ErrorKind:  errorKindToProto[r.ErrorKind],
		UpdateTime: ts(r.UpdatedAt),
	}
}
