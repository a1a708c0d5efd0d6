package main

// This file holds what the client commands (ingest, search) share: their settings, the gRPC
// connection, error messages for failed calls, and exit codes. The server's config.Config is not
// used here: a client needs only an address, a key, an output format and a timeout.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/server"
)

// Exit codes of the client commands, documented in `pipeline ingest --help` for scripts.
const (
	exitOK          = 0
	exitError       = 1 // usage, connection and every other error
	exitDocErrors   = 3 // every job completed, but some documents failed
	exitJobsNotDone = 4 // a job failed or was cancelled
)

// exitCodeError is an error that asks for a particular process exit code.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// ExitCode is the process exit code the error stands for.
func (e *exitCodeError) ExitCode() int { return e.code }

// exitCode maps an error returned by a command to the process exit code: 0 for nil, the code an
// exitCodeError carries, 1 for anything else. main should exit with it.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitError
}

// clientSettings are the flags every client command takes.
type clientSettings struct {
	// Server is the gRPC address (host:port) of the API. Defaults to PIPELINE_SERVER, else
	// 127.0.0.1:9090.
	Server string
	// APIKey is sent as "authorization: Bearer <key>" on every call when set. Defaults to
	// PIPELINE_API_KEY. Never printed.
	APIKey string
	// Output is text or json. Defaults to text.
	Output string
	// Timeout bounds each unary call; streams run until they end. Defaults to 30s.
	Timeout time.Duration
	// TLS dials with TLS, verifying the server against the system's roots. Defaults to false:
	// plaintext.
	TLS bool
	// TLSCA is a PEM file of the CAs to verify the server with instead of the system's roots;
	// setting it turns TLS on. Defaults to PIPELINE_TLS_CA, else none.
	TLSCA string
}

const (
	envServer     = "PIPELINE_SERVER"
	envAPIKey     = "PIPELINE_API_KEY"
	envTLSCA      = "PIPELINE_TLS_CA"
	defaultServer = "127.0.0.1:9090"
)

// registerClientFlags adds the client flags to cmd, with defaults taken from the environment, and
// returns the settings they fill in.
func registerClientFlags(cmd *cobra.Command) *clientSettings {
	return registerClientFlagsEnv(cmd, os.Getenv)
}

// registerClientFlagsEnv is registerClientFlags with the environment read through getenv.
func registerClientFlagsEnv(cmd *cobra.Command, getenv func(string) string) *clientSettings {
	s := &clientSettings{}
	fs := cmd.Flags()
	fs.StringVar(&s.Server, "server", cmp.Or(getenv(envServer), defaultServer), "gRPC address of the pipeline server (env "+envServer+")")
	fs.StringVar(&s.APIKey, "api-key", getenv(envAPIKey), "API key, sent as a bearer token (env "+envAPIKey+")")
	fs.Lookup("api-key").DefValue = "" // help must not print a key taken from the environment
	fs.StringVarP(&s.Output, "output", "o", "text", "output format: text or json")
	fs.DurationVar(&s.Timeout, "timeout", 30*time.Second, "time limit of each request (streams are not limited)")
	fs.BoolVar(&s.TLS, "tls", false, "connect with TLS, trusting the system's roots")
	fs.StringVar(&s.TLSCA, "tls-ca", getenv(envTLSCA), "PEM file of the CAs to trust; turns TLS on (env "+envTLSCA+")")
	return s
}

// validate reports a bad flag value as a usage error.
func (s *clientSettings) validate() error {
	if s.Output != "text" && s.Output != "json" {
		return fmt.Errorf("--output: want text or json, got %q", s.Output)
	}
	if s.Timeout <= 0 {
		return fmt.Errorf("--timeout: must be positive, got %s", s.Timeout)
	}
	if strings.TrimSpace(s.Server) == "" {
		return fmt.Errorf("--server (%s): must not be empty", envServer)
	}
	return nil
}

// client is a connection to the server with the service stubs on it.
type client struct {
	settings *clientSettings
	conn     *grpc.ClientConn
	content  pipelinev1.ContentServiceClient
	jobs     pipelinev1.JobServiceClient
	search   pipelinev1.SearchServiceClient
}

// dial validates the settings and prepares a connection. Nothing is sent until the first call,
// so an unreachable server shows up as an Unavailable error of that call.
func dial(s *clientSettings) (*client, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if s.TLS || s.TLSCA != "" {
		c, err := server.ClientTLS(s.TLSCA, "--tls-ca ("+envTLSCA+")")
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(c)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}
	if s.APIKey != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(s.APIKey)))
	}
	conn, err := grpc.NewClient(s.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("--server %q (%s): %w", s.Server, envServer, err)
	}
	return &client{
		settings: s,
		conn:     conn,
		content:  pipelinev1.NewContentServiceClient(conn),
		jobs:     pipelinev1.NewJobServiceClient(conn),
		search:   pipelinev1.NewSearchServiceClient(conn),
	}, nil
}

func (c *client) Close() error { return c.conn.Close() }

// unary returns a context for one unary call, bounded by --timeout.
func (c *client) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.settings.Timeout)
}

// bearer attaches an API key to every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so a key can still be sent over plaintext to a local server
// (the default); use --tls or --tls-ca for anything else.
func (bearer) RequireTransportSecurity() bool { return false }

// callError turns the error of a call into a message that says what to do about it. what names
// the call ("list sources"); the key is never part of the message.
func (c *client) callError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%s: cannot reach the server at %s (set --server or %s): %s", what, c.settings.Server, envServer, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("%s: %s (set --api-key or %s)", what, st.Message(), envAPIKey)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer within --timeout %s", what, c.settings.Timeout)
	case codes.Canceled:
		return fmt.Errorf("%s: interrupted", what)
	}
	return fmt.Errorf("%s: the server answered %s: %s", what, rpccode.Code(st.Code()).String(), st.Message())
}

// listSources returns every source, newest first, paging through ListSources.
func (c *client) listSources(ctx context.Context) ([]*pipelinev1.Source, error) {
	var out []*pipelinev1.Source
	token := ""
	for {
		cctx, cancel := c.unary(ctx)
		resp, err := c.content.ListSources(cctx, &pipelinev1.ListSourcesRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			return nil, c.callError("list sources", err)
		}
		out = append(out, resp.GetSources()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// sourcesNamed returns the sources whose name is exactly name, newest first.
func sourcesNamed(all []*pipelinev1.Source, name string) []*pipelinev1.Source {
	var out []*pipelinev1.Source
	for _, s := range all {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	// The server lists newest first already; sorting by create time keeps that true however
	// the pages were put together.
	sortNewestFirst(out)
	return out
}

func sortNewestFirst(ss []*pipelinev1.Source) {
	slices.SortStableFunc(ss, func(a, b *pipelinev1.Source) int {
		return b.GetCreateTime().AsTime().Compare(a.GetCreateTime().AsTime())
	})
}
