package milvus_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
	"github.com/pipeline-dev/pipeline/internal/vector/vectortest"
)

func TestConformanceOnFake(t *testing.T) {
	t.Parallel()
	fake := milvusfake.New(t)
	var n atomic.Int64
	vectortest.Run(t, func(t *testing.T, dim int) vector.Store {
		s, err := milvus.Open(context.Background(), milvus.Config{
			Address:    fake.Addr(),
			Collection: fmt.Sprintf("conformance_%d", n.Add(1)),
			Dimension:  dim,
		})
		require.NoError(t, err)
		return s
	})
}

// TestConformanceOnMilvus runs the suite against a real Milvus (2.4 or later) when MILVUS_ADDR
// names one (host:port); MILVUS_USER and MILVUS_PASSWORD, or MILVUS_TOKEN, authenticate. Each
// store gets a collection of its own, dropped afterwards.
func TestConformanceOnMilvus(t *testing.T) {
	addr := os.Getenv("MILVUS_ADDR")
	if addr == "" {
		t.Skip("MILVUS_ADDR is not set: set it to a Milvus (host:port) to run the conformance suite against a real server")
	}
	t.Parallel()
	base := milvus.Config{
		Address:  addr,
		Username: os.Getenv("MILVUS_USER"),
		Password: os.Getenv("MILVUS_PASSWORD"),
		APIKey:   os.Getenv("MILVUS_TOKEN"),
	}
	prefix := fmt.Sprintf("pipeline_test_%d", time.Now().UnixNano())
	var n atomic.Int64
	vectortest.Run(t, func(t *testing.T, dim int) vector.Store {
		cfg := base
		cfg.Collection = fmt.Sprintf("%s_%d", prefix, n.Add(1))
		cfg.Dimension = dim
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Registered first, so it runs after the suite has closed the store.
		t.Cleanup(func() { dropCollection(t, base, cfg.Collection) })
		s, err := milvus.Open(ctx, cfg)
		require.NoError(t, err)
		return s
	})
}

// dropCollection removes a test's collection through a connection of its own (the store is
// closed by then).
func dropCollection(t *testing.T, cfg milvus.Config, collection string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.NewClient(ctx, client.Config{
		Address: cfg.Address, Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.DropCollection(ctx, collection))
}
