// Package app wires the server's collaborators from a Config: the Postgres pool (migrated when
// asked), Redis, the event bus, the job manager and the content store. cmd/pipeline and the
// end-to-end tests build the service the same way through it.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/server"
)

// Build connects to Postgres and Redis and returns the server's dependencies and a function that
// releases them. It fails, naming the setting, when a dependency cannot be reached.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger) (server.Deps, func(), error) {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return server.Deps{}, nil, fmt.Errorf("PIPELINE_DATABASE_URL: %w", err)
	}
	if cfg.Migrate {
		n, err := db.MigrateUp(ctx, pool)
		if err != nil {
			pool.Close()
			return server.Deps{}, nil, err
		}
		if n > 0 {
			log.Info("applied database migrations", "count", n)
		}
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		pool.Close()
		return server.Deps{}, nil, fmt.Errorf("PIPELINE_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		pool.Close()
		_ = rdb.Close()
		return server.Deps{}, nil, fmt.Errorf("PIPELINE_REDIS_URL: connect to Redis at %s: %w", opt.Addr, err)
	}
	bus := events.New(rdb, cfg.RedisPrefix, log)
	mgr, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{
		Notifier:       notifier{bus},
		Logger:         log,
		DefaultTimeout: cfg.JobTimeout,
	})
	if err != nil {
		pool.Close()
		_ = rdb.Close()
		return server.Deps{}, nil, err
	}
	deps := server.Deps{
		Pool:    pool,
		Redis:   rdb,
		Bus:     bus,
		Jobs:    mgr,
		Content: content.NewPgStore(pool),
		Log:     log,
	}
	return deps, func() { _ = rdb.Close(); pool.Close() }, nil
}

// notifier announces every committed job change on the event bus.
type notifier struct{ bus *events.Bus }

func (n notifier) JobChanged(ctx context.Context, job *jobs.Job) error {
	n.bus.Publish(ctx, job.ID, job.Version)
	return nil
}
