package server

import (
	"context"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

// searchService answers Unimplemented until embedding and vector stores exist (the processing
// pipeline issue); the RPC is in the API now so clients can be written against it.
type searchService struct {
	pipelinev1.UnimplementedSearchServiceServer
}

func (*searchService) Search(context.Context, *pipelinev1.SearchRequest) (*pipelinev1.SearchResponse, error) {
	return nil, errs.Unimplemented("search needs the processing pipeline (workers, embedder, vector store), which is not built yet")
}

// workerService answers Unimplemented until workers exist (the processing pipeline issue).
type workerService struct {
	pipelinev1.UnimplementedWorkerServiceServer
}

func (*workerService) ReportProgress(pipelinev1.WorkerService_ReportProgressServer) error {
	return errs.Unimplemented("progress reports need the processing pipeline workers, which are not built yet")
}
