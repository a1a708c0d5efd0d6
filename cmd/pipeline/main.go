// Command pipeline is the one binary of the service: `dev` runs everything in one process,
// `serve` the API server and reconciler, `worker` a worker process, `migrate` manages the
// database schema, the client commands (sources, ingest, search) call a running server, and
// `static` serves a folder (the sample site) for local crawls.
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
	"golang.org/x/sync/errgroup"

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
		code := exitCode(err)
		if ctx.Err() != nil {
			code = exitInterrupted // whatever the interrupted call said
		}
		os.Exit(code)
	}
}

func newRoot() *cobra.Command {
	cfg, envErr := config.Load()
	root := &cobra.Command{
		Use:           "pipeline",
		Short:         "Turns web sources and documents into searchable vectors, with a watchable record of every job.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The service's settings belong to the commands that run the service; the client commands
	// (sources, ingest, search) have their own few.
	withServiceSettings := func(cmd *cobra.Command) *cobra.Command {
		cfg.RegisterFlags(cmd.PersistentFlags())
		cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
			if envErr != nil {
				return envErr
			}
			return cfg.Validate()
		}
		return cmd
	}
	root.AddCommand(
		withServiceSettings(serveCmd(&cfg)),
		withServiceSettings(devCmd(&cfg)),
		withServiceSettings(workerCmd(&cfg)),
		withServiceSettings(migrateCmd(&cfg)),
		ingestCmd(),
		searchCmd(),
		sourcesCmd(), jobsCmd(), staticCmd(), exitCodesCmd(),
		workersCmd(), statsCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
		})
	markUsageErrors(root)
	return root
}

// markUsageErrors makes cobra's own errors usage errors (exit code 2): bad flags, wrong
// arguments, unknown commands.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			// A group: cobra would print its help and exit 0 for `pipeline jobs bogus`.
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErrorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
				}
				return cmd.Help()
			}
		} else if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return &usageError{err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
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
		Short: "Run the gRPC API, the REST gateway and the reconciler (and in-process workers with --workers=1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), *cfg, cfg.Workers > 0)
		},
	}
}

func devCmd(cfg *config.Config) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: server, reconciler, workers and the embedded vector store",
		Long: `dev runs the whole service in one process on the local Postgres and Redis: the gRPC API and
REST gateway, the reconciler, a worker pool of --max-concurrent-jobs batches and the embedded
vector store under --data-dir. It is the one command that runs the main job on a fresh machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev := *cfg
			dev.CrawlAllowLoopback = true // so a site served on this machine can be crawled
			return runServer(cmd.Context(), dev, true)
		},
	}
}

func workerCmd(cfg *config.Config) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run a worker process: take batches from the queue, process them, report to --server",
		Long: `worker processes batches from the queue and reports progress to the server at --server
(PIPELINE_SERVER) with --worker-api-key. It needs a vector store that several processes can share
(PIPELINE_VECTOR_STORE=milvus); with the embedded store, run ` + "`pipeline dev`" + ` instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cfg)
			a, err := app.Build(cmd.Context(), *cfg, log, app.RoleWorker)
			if err != nil {
				return err
			}
			defer a.Close()
			a.Version = version
			return a.RunWorkers(cmd.Context(), cfg.Server, cfg.WorkerAPIKey)
		},
	}
}

// runServer runs the server and the reconciler, and in-process workers when asked, until ctx
// ends; any of them failing stops the rest.
func runServer(ctx context.Context, cfg config.Config, workers bool) error {
	log := newLogger(&cfg)
	a, err := app.Build(ctx, cfg, log, app.RoleServer)
	if err != nil {
		return err
	}
	defer a.Close()
	a.Version = version
	srv, err := server.New(cfg, a.ServerDeps())
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { a.Reconciler.Run(gctx); return nil })
	g.Go(func() error { a.Crawls.Run(gctx); return nil })
	if workers {
		g.Go(func() error {
			grpcAddr, _, err := srv.Addrs(gctx)
			if err != nil {
				return nil // the server stopped before listening; its error is the one to report
			}
			// With API keys configured, in-process workers use a worker-scoped key the app
			// made for them at Build; the argument matters only without keys.
			return a.RunWorkers(gctx, grpcAddr, cfg.WorkerAPIKey)
		})
	}
	return g.Wait()
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
