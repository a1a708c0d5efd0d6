// Package client is the Go client of the pipeline API: a connection with API-key auth, TLS and
// keepalive set up, calls that are retried when the server is unavailable and repeating them is
// safe, typed access to the services, and WatchJob, which follows a job to its end across
// dropped streams and server restarts.
//
//	c, err := client.Dial(ctx, "127.0.0.1:9090", client.Options{APIKey: os.Getenv("PIPELINE_API_KEY")})
//	if err != nil { ... }
//	defer c.Close()
//	resp, err := c.Content().IngestDocuments(ctx, &pipelinev1.IngestDocumentsRequest{...})
//	job, err := c.WatchJob(ctx, resp.GetJob().GetJobId(), client.WatchOptions{OnUpdate: show})
//
// The services are the generated stubs of github.com/pipeline-dev/pipeline/gen/go/pipeline/v1;
// errors are gRPC statuses (google.golang.org/grpc/status). See docs/decisions/0011 for the
// choices made here.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// DefaultAddr is the server's default gRPC address.
const DefaultAddr = "127.0.0.1:9090"

// Options configure a connection. The zero value is a plaintext connection without a key,
// with the default retry policy and keepalive.
type Options struct {
	// APIKey is sent as "authorization: Bearer <key>" with every call when set. Dial refuses to
	// send it over plaintext to an address that is not loopback (see AllowInsecureKey).
	APIKey string
	// AllowInsecureKey lets APIKey go over plaintext to any address. Anyone on the path can read
	// and reuse the key then; it is meant for a private network the caller trusts.
	AllowInsecureKey bool

	// TLS turns TLS on, verifying the server against the system's roots (or CAFile).
	TLS bool
	// CAFile is a PEM file of the CAs to verify the server with instead of the system's roots.
	// Setting it turns TLS on.
	CAFile string
	// ServerName is the name the server's certificate must be valid for, when it is not the
	// host of the address (for example when dialing an IP address). Setting it turns TLS on.
	ServerName string
	// TLSConfig, when set, is used as it is (CAFile and ServerName are ignored) and turns TLS on.
	TLSConfig *tls.Config

	// Retry is the policy for calls that fail with Unavailable. The zero value is
	// DefaultRetryPolicy; set MaxAttempts to 1 to turn retries off.
	Retry RetryPolicy
	// Keepalive is how the connection checks that the server is still there while idle or
	// streaming. The zero value is DefaultKeepalive.
	Keepalive keepalive.ClientParameters
	// MaxRecvBytes is the largest message accepted from the server; 0 means 64 MiB.
	MaxRecvBytes int
	// UserAgent is added to the gRPC user agent, e.g. "pipeline-cli/1.2.0".
	UserAgent string
	// Block makes Dial wait until the connection is ready, or ctx ends. By default Dial
	// returns at once and the connection is made in the background; the first call then waits
	// for it or fails with Unavailable (and is retried by the policy).
	Block bool
	// DialOptions are added after the client's own options; interceptors given here run inside
	// the retry interceptor, once per attempt.
	DialOptions []grpc.DialOption
}

// DefaultKeepalive pings an idle connection every 30 s and drops it when a ping gets no answer
// within 10 s, so a watch notices a server that vanished without closing the connection. The
// server allows pings every 10 s.
var DefaultKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// ErrInsecureKey is returned by Dial for an API key that would go over plaintext to an address
// that is not loopback.
var ErrInsecureKey = errors.New("refusing to send the API key over plaintext to a non-loopback address: use TLS, or allow it explicitly")

// Client is a connection to a pipeline server. It is safe for concurrent use; Close it when done.
type Client struct {
	addr    string
	conn    *grpc.ClientConn
	jobs    pipelinev1.JobServiceClient
	content pipelinev1.ContentServiceClient
	search  pipelinev1.SearchServiceClient
	health  healthpb.HealthClient
}

// Dial prepares a connection to addr (host:port, or any gRPC target such as dns:///host:port or
// unix:///path). It checks the options (a CA file that cannot be read, a key that would go over
// plaintext to another machine) and returns an error naming the option at fault.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, errors.New("client: the server address is empty")
	}
	creds, tlsOn, err := transportCredentials(opts)
	if err != nil {
		return nil, err
	}
	if opts.APIKey != "" && !tlsOn && !opts.AllowInsecureKey && !IsLoopback(addr) {
		return nil, fmt.Errorf("client: %w (address %s)", ErrInsecureKey, addr)
	}
	policy := opts.Retry.withDefaults()
	ka := opts.Keepalive
	if ka == (keepalive.ClientParameters{}) {
		ka = DefaultKeepalive
	}
	maxRecv := opts.MaxRecvBytes
	if maxRecv <= 0 {
		maxRecv = 64 << 20
	}
	sent := &sentTracker{}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(ka),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)),
		// Reconnect soon after a server comes back: grpc's default waits up to two minutes
		// between connection attempts, longer than any command wants to wait.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithStatsHandler(sent),
		// First in the chain, so interceptors from DialOptions run once per attempt.
		grpc.WithChainUnaryInterceptor(policy.unaryInterceptor()),
		grpc.WithChainStreamInterceptor(policy.streamInterceptor()),
	}
	if opts.APIKey != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{key: opts.APIKey, requireTLS: !opts.AllowInsecureKey && tlsOn}))
	}
	if opts.UserAgent != "" {
		dialOpts = append(dialOpts, grpc.WithUserAgent(opts.UserAgent))
	}
	dialOpts = append(dialOpts, opts.DialOptions...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	c := &Client{
		addr:    addr,
		conn:    conn,
		jobs:    pipelinev1.NewJobServiceClient(conn),
		content: pipelinev1.NewContentServiceClient(conn),
		search:  pipelinev1.NewSearchServiceClient(conn),
		health:  healthpb.NewHealthClient(conn),
	}
	conn.Connect()
	if opts.Block {
		for st := conn.GetState(); st != connectivity.Ready; st = conn.GetState() {
			if !conn.WaitForStateChange(ctx, st) {
				_ = conn.Close()
				return nil, fmt.Errorf("client: connect to %s: %w", addr, ctx.Err())
			}
		}
	}
	return c, nil
}

// Addr is the address the client dials.
func (c *Client) Addr() string { return c.addr }

// Conn is the underlying connection, for services this package has no accessor for (build
// their stubs on it: they get the same auth, retries and keepalive).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Jobs is JobService: read, watch, cancel and retry jobs.
func (c *Client) Jobs() pipelinev1.JobServiceClient { return c.jobs }

// Content is ContentService: sources and documents.
func (c *Client) Content() pipelinev1.ContentServiceClient { return c.content }

// Search is SearchService.
func (c *Client) Search() pipelinev1.SearchServiceClient { return c.search }

// Health is the standard gRPC health service.
func (c *Client) Health() healthpb.HealthClient { return c.health }

// Close closes the connection; calls in flight fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// transportCredentials builds the connection's credentials and says whether they are TLS.
func transportCredentials(opts Options) (credentials.TransportCredentials, bool, error) {
	if opts.TLSConfig != nil {
		return credentials.NewTLS(opts.TLSConfig), true, nil
	}
	if !opts.TLS && opts.CAFile == "" && opts.ServerName == "" {
		return insecure.NewCredentials(), false, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, false, fmt.Errorf("client: CA file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("client: CA file %s: no PEM certificate in it", opts.CAFile)
		}
		cfg.RootCAs = roots
	}
	return credentials.NewTLS(cfg), true, nil
}

// IsLoopback reports whether a gRPC target surely stays on this machine: a Unix socket,
// "localhost", or a loopback IP address (127.0.0.0/8, ::1), with or without a dns:/// or
// passthrough:/// scheme. Any other name is not loopback, since it may resolve anywhere.
func IsLoopback(target string) bool {
	t := strings.TrimSpace(target)
	if strings.HasPrefix(t, "unix:") || strings.HasPrefix(t, "unix-abstract:") {
		return true
	}
	for _, scheme := range []string{"dns:///", "passthrough:///"} {
		t = strings.TrimPrefix(t, scheme)
	}
	host := t
	if h, _, err := net.SplitHostPort(t); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// bearer sends the API key with every call.
type bearer struct {
	key        string
	requireTLS bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

// RequireTransportSecurity is true whenever the connection uses TLS and plaintext was not
// explicitly allowed, so grpc itself refuses to send the key on anything else. Plaintext to
// loopback was checked by Dial.
func (b bearer) RequireTransportSecurity() bool { return b.requireTLS }
