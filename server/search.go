package server

import (
	"context"
	"fmt"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// searchService embeds the query with the configured embedder and searches the vector store.
type searchService struct {
	pipelinev1.UnimplementedSearchServiceServer
	s *Server
}

func (h *searchService) Search(ctx context.Context, req *pipelinev1.SearchRequest) (*pipelinev1.SearchResponse, error) {
	if h.s.deps.Embedder == nil || h.s.deps.Vectors == nil {
		return nil, errs.Unimplemented("this server has no embedder and vector store configured")
	}
	topK := int(req.GetTopK())
	if topK == 0 {
		topK = 10
	}
	vecs, err := h.s.deps.Embedder.Embed(ctx, []string{req.GetQuery()})
	if err != nil {
		return nil, unavailableIfTransient("embed the query", err)
	}
	if len(vecs) != 1 {
		return nil, fmt.Errorf("embedder returned %d vectors for one query", len(vecs))
	}
	hits, err := h.s.deps.Vectors.Search(ctx, vecs[0], topK, vector.Filter{SourceIDs: req.GetSourceIds()})
	if err != nil {
		return nil, unavailableIfTransient("search the vector store", err)
	}
	out := &pipelinev1.SearchResponse{Results: make([]*pipelinev1.SearchResult, 0, len(hits))}
	for _, hit := range hits {
		out.Results = append(out.Results, &pipelinev1.SearchResult{
			Score:       hit.Score,
			ChunkId:     hit.ID,
			DocumentId:  hit.DocumentID,
			SourceId:    hit.SourceID,
			ChunkIndex:  int32(hit.ChunkIndex),
			Text:        hit.Text,
			Title:       hit.Title,
			Uri:         hit.URI,
			HeadingPath: hit.HeadingPath,
			StartOffset: hit.StartOffset,
			EndOffset:   hit.EndOffset,
		})
	}
	return out, nil
}

// unavailableIfTransient maps a dependency's transient failure to Unavailable (retry later).
func unavailableIfTransient(what string, err error) error {
	if transient, _ := errs.IsTransient(err); transient {
		return fmt.Errorf("%w: %s: %w", errs.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
