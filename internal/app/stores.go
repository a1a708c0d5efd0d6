package app

import (
	"context"
	"fmt"
	"path/filepath"

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
		// A folder of its own: the data directory may hold other things later.
		s, err := embedded.Open(filepath.Join(cfg.DataDir, "vectors"), cfg.EmbedDimension)
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_DATA_DIR: %w", err)
		}
		return s, nil
	}
}
