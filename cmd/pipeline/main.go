// Command pipeline is the one binary of the service: `serve` runs the API server, `migrate`
// manages the database schema. Later issues add the worker, `dev` and client commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	cfg, envErr := config.Load()
	root := &cobra.Command{
		Use:           "pipeline",
		Short:         "Turns web sources and documents into searchable vectors, with a watchable record of every job.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if envErr != nil {
				return envErr
			}
			return cfg.Validate()
		},
	}
	cfg.RegisterFlags(root.PersistentFlags())
	root.AddCommand(serveCmd(&cfg), migrateCmd(&cfg), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	})
	return root
}

func newLogger(cfg *config.Config) *slog.Logger {
	level, _ := config.ParseLogLevel(cfg.LogLevel) // validated before
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func serveCmd(cfg *config.Config) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gRPC API and the REST gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cfg)
			deps, closeDeps, err := app.Build(cmd.Context(), *cfg, log)
			if err != nil {
				return err
			}
			defer closeDeps()
			srv, err := server.New(*cfg, deps)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
}

func migrateCmd(cfg *config.Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the database schema (migrations are embedded in the binary)",
	}
	withPool := func(run func(ctx context.Context, cmd *cobra.Command, pool *pgxpool.Pool) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			pool, err := db.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return fmt.Errorf("PIPELINE_DATABASE_URL: %w", err)
			}
			defer pool.Close()
			return run(cmd.Context(), cmd, pool)
		}
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
			RunE: withPool(func(ctx context.Context, cmd *cobra.Command, pool *pgxpool.Pool) error {
				n, err := db.MigrateUp(ctx, pool)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s)\n", n)
				return nil
			}),
		},
		&cobra.Command{
			Use: "down", Short: "Roll back the most recent migration", Args: cobra.NoArgs,
			RunE: withPool(func(ctx context.Context, cmd *cobra.Command, pool *pgxpool.Pool) error {
				if err := db.MigrateDown(ctx, pool); err != nil {
					if errors.Is(err, db.ErrNoMigration) {
						fmt.Fprintln(cmd.OutOrStdout(), "nothing to roll back")
						return nil
					}
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "rolled back 1 migration")
				return nil
			}),
		},
		&cobra.Command{
			Use: "status", Short: "List migrations and whether each is applied", Args: cobra.NoArgs,
			RunE: withPool(func(ctx context.Context, cmd *cobra.Command, pool *pgxpool.Pool) error {
				st, err := db.Status(ctx, pool)
				if err != nil {
					return err
				}
				for _, s := range st {
					state := "pending"
					if s.Applied {
						state = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%05d  %-30s  %s\n", s.Version, s.Name, state)
				}
				return nil
			}),
		},
	)
	return cmd
}
