package app

import (
	"context"
	"fmt"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus"
)

// openVectors opens the configured vector store.
func openVectors(ctx context.Context, cfg config.Config) (vector.Store, error) {
	switch cfg.VectorStore {
	case "milvus":
		// Milvus takes "user:password" and API keys alike as a token.
		s, err := milvus.Open(ctx, milvus.Config{
			Address: cfg.MilvusAddr, Collection: cfg.MilvusCollection, Dimension: cfg.EmbedDimension, APIKey: cfg.MilvusToken,
		})
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_MILVUS_ADDR: %w", err)
		}
		return s, nil
	default:
		s, err := embedded.Open(cfg.DataDir, cfg.EmbedDimension)
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_DATA_DIR: %w", err)
		}
		return s, nil
	}
}
