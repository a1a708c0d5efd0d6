package main

// This file holds what the client commands share: their flags and environment, the connection
// (over package client), error messages for failed calls, JSON output and exit codes. The
// server's config.Config is not used here: a client needs only an address, a key, TLS, an output
// format and a timeout.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiclient "github.com/pipeline-dev/pipeline/client"
	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// Exit codes of the client commands, the same for every command; docs/cli.md lists them for
// scripts. 3 and 4 say how watched jobs ended; 5 to 7 say why a call failed.
const (
	exitOK          = 0
	exitError       = 1   // any other error: the server refused the operation, an internal error, ...
	exitUsage       = 2   // a bad flag or argument (also one the server rejects as INVALID_ARGUMENT)
	exitDocErrors   = 3   // every job completed, but some documents failed
	exitJobsNotDone = 4   // a job failed or was cancelled (or a watched source FAILED)
	exitNotFound    = 5   // no such job, source or document
	exitAuth        = 6   // a missing or wrong API key, or one without the scope the call needs
	exitUnavailable = 7   // the server cannot be reached, did not answer in time, or is overloaded
	exitInterrupted = 130 // interrupted (Ctrl-C, SIGTERM); what the server was doing goes on
)

// exitCodesHelp is `pipeline help exit-codes`, and what docs/cli.md says.
const exitCodesHelp = `Every client command (sources, ingest, jobs, search, workers, stats) ends with one of
these exit codes:

  0    success; for a command that watches jobs: every job COMPLETED and no document failed
  1    any other error: the server refused the operation (FAILED_PRECONDITION, ALREADY_EXISTS),
       an internal error, a wait that ended without an answer
  2    usage: a bad flag or argument, an unknown command (or INVALID_ARGUMENT from the server)
  3    the watched jobs COMPLETED, but some documents failed
  4    a watched job FAILED or was CANCELLED, or a watched source FAILED
  5    not found: no job, source or document with that id or name
  6    not allowed: a missing or wrong API key (UNAUTHENTICATED), or a key without the scope
       the call needs (PERMISSION_DENIED)
  7    the server cannot be reached or did not answer in time (UNAVAILABLE after retries,
       DEADLINE_EXCEEDED), or it is overloaded (RESOURCE_EXHAUSTED: try again later)
  130  interrupted (Ctrl-C, SIGTERM); jobs go on on the server

The message on stderr says what happened and, where it can, what to do.`

func exitCodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "The exit codes of the client commands, for scripts",
		Long:  exitCodesHelp,
	}
}

// exitCodeError is an error that asks for a particular process exit code.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// ExitCode is the process exit code the error stands for.
func (e *exitCodeError) ExitCode() int { return e.code }

// usageError marks a bad flag or argument: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
func (e *usageError) ExitCode() int { return exitUsage }

// usageErrorf is a usage error with a formatted message.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitCode maps an error returned by a command to the process exit code: 0 for nil, the code an
// error in the chain asks for (exitCodeError, usageError), else the code of the gRPC status in
// the chain, else 1. main exits with it (with 130 instead when it was interrupted).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return statusExitCode(se.GRPCStatus().Code())
	}
	return exitError
}

// statusExitCode is the exit code of a call that failed with code.
func statusExitCode(code codes.Code) int {
	switch code {
	case codes.OK:
		return exitOK
	case codes.InvalidArgument, codes.OutOfRange:
		return exitUsage
	case codes.NotFound:
		return exitNotFound
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitAuth
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return exitUnavailable
	case codes.Canceled:
		return exitInterrupted
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
	// Output is text or json. Defaults to PIPELINE_OUTPUT, else text.
	Output string
	// Timeout bounds each unary call, retries included; streams run until they end. Defaults
	// to 30s.
	Timeout time.Duration
	// TLS dials with TLS, verifying the server against the system's roots. Defaults to false:
	// plaintext.
	TLS bool
	// TLSCA is a PEM file of the CAs to verify the server with instead of the system's roots;
	// setting it turns TLS on. Defaults to PIPELINE_TLS_CA, else none.
	TLSCA string
	// TLSServerName is the name the server's certificate must be valid for when it is not the
	// host of Server; setting it turns TLS on. Defaults to PIPELINE_TLS_SERVER_NAME.
	TLSServerName string
	// AllowPlaintextKey lets the key go over plaintext to an address that is not loopback.
	// Defaults to PIPELINE_ALLOW_PLAINTEXT_KEY (true or 1), else false.
	AllowPlaintextKey bool
}

const (
	envServer            = "PIPELINE_SERVER"
	envAPIKey            = "PIPELINE_API_KEY"
	envOutput            = "PIPELINE_OUTPUT"
	envTLSCA             = "PIPELINE_TLS_CA"
	envTLSServerName     = "PIPELINE_TLS_SERVER_NAME"
	envAllowPlaintextKey = "PIPELINE_ALLOW_PLAINTEXT_KEY"
	defaultServer        = apiclient.DefaultAddr
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
	fs.StringVarP(&s.Output, "output", "o", cmp.Or(getenv(envOutput), "text"), "output format: text or json (env "+envOutput+")")
	fs.DurationVar(&s.Timeout, "timeout", 30*time.Second, "time limit of each request, retries included (streams are not limited)")
	fs.BoolVar(&s.TLS, "tls", false, "connect with TLS, trusting the system's roots")
	fs.StringVar(&s.TLSCA, "tls-ca", getenv(envTLSCA), "PEM file of the CAs to trust; turns TLS on (env "+envTLSCA+")")
	fs.StringVar(&s.TLSServerName, "tls-server-name", getenv(envTLSServerName), "name the server's certificate must be valid for, when not the host of --server; turns TLS on (env "+envTLSServerName+")")
	allow := getenv(envAllowPlaintextKey)
	fs.BoolVar(&s.AllowPlaintextKey, "allow-plaintext-key", allow == "1" || strings.EqualFold(allow, "true"),
		"send --api-key over plaintext to an address that is not loopback (env "+envAllowPlaintextKey+")")
	return s
}

// validate reports a bad flag value as a usage error.
func (s *clientSettings) validate() error {
	if s.Output != "text" && s.Output != "json" {
		return usageErrorf("--output (%s): want text or json, got %q", envOutput, s.Output)
	}
	if s.Timeout <= 0 {
		return usageErrorf("--timeout: must be positive, got %s", s.Timeout)
	}
	if strings.TrimSpace(s.Server) == "" {
		return usageErrorf("--server (%s): must not be empty", envServer)
	}
	return nil
}

// client is a connection to the server with the service stubs on it.
type client struct {
	settings *clientSettings
	api      *apiclient.Client
	conn     *grpc.ClientConn
	content  pipelinev1.ContentServiceClient
	jobs     pipelinev1.JobServiceClient
	search   pipelinev1.SearchServiceClient
}

// dial validates the settings and prepares a connection (package client: retries on
// Unavailable, keepalive, the key refused over plaintext to another machine). Nothing is sent
// until the first call, so an unreachable server shows up as an Unavailable error of that call.
func dial(s *clientSettings) (*client, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	api, err := apiclient.Dial(context.Background(), s.Server, apiclient.Options{
		APIKey:           s.APIKey,
		AllowInsecureKey: s.AllowPlaintextKey,
		TLS:              s.TLS,
		CAFile:           s.TLSCA,
		ServerName:       s.TLSServerName,
		UserAgent:        "pipeline-cli/" + version,
	})
	switch {
	case errors.Is(err, apiclient.ErrInsecureKey):
		return nil, usageErrorf("--api-key: refusing to send it over plaintext to %s, which is not this machine: use --tls or --tls-ca, or allow it with --allow-plaintext-key (%s)", s.Server, envAllowPlaintextKey)
	case err != nil && s.TLSCA != "":
		return nil, usageErrorf("--tls-ca (%s): %w", envTLSCA, err)
	case err != nil:
		return nil, usageErrorf("--server %q (%s): %w", s.Server, envServer, err)
	}
	return &client{
		settings: s,
		api:      api,
		conn:     api.Conn(),
		content:  api.Content(),
		jobs:     api.Jobs(),
		search:   api.Search(),
	}, nil
}

func (c *client) Close() error { return c.api.Close() }

// unary returns a context for one unary call, bounded by --timeout.
func (c *client) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.settings.Timeout)
}

// callError is the error of a failed call: a message that says what to do about it, with the
// gRPC status still in the chain (errors.Unwrap, status.Code) for the exit code and for callers
// that tell NotFound from other failures.
type callError struct {
	msg string
	err error
}

func (e *callError) Error() string { return e.msg }
func (e *callError) Unwrap() error { return e.err }

// callError turns the error of a call into a message that says what to do about it. what names
// the call ("list sources"); the key is never part of the message.
func (c *client) callError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	var msg string
	switch st.Code() {
	case codes.Unavailable:
		msg = fmt.Sprintf("%s: cannot reach the server at %s (set --server or %s): %s", what, c.settings.Server, envServer, st.Message())
	case codes.Unauthenticated:
		msg = fmt.Sprintf("%s: %s (set --api-key or %s)", what, st.Message(), envAPIKey)
	case codes.DeadlineExceeded:
		msg = fmt.Sprintf("%s: no answer within --timeout %s", what, c.settings.Timeout)
	case codes.Canceled:
		msg = fmt.Sprintf("%s: interrupted", what)
	default:
		msg = fmt.Sprintf("%s: the server answered %s: %s", what, rpccode.Code(st.Code()).String(), st.Message())
	}
	return &callError{msg: msg, err: err}
}

// detailLines returns a function that writes one "key: value" line, with the values aligned,
// and one that flushes them to out: how text output shows one object.
func detailLines(out io.Writer) (line func(key, format string, args ...any), flush func()) {
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	line = func(key, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{key}, args...)...)
	}
	return line, func() { _ = tw.Flush() }
}

// printProto writes one message as one line of JSON with proto field names: the output of
// --output json.
func printProto(out io.Writer, m proto.Message) error {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
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
