package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/server"
)

// selfSigned writes a self-signed certificate valid for 127.0.0.1 and localhost, and its key, to
// a temporary directory and returns their paths. The certificate is its own CA.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pipeline test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// TestTLS runs a server with TLS on both ports and in-process workers that dial it as `pipeline
// dev` does (trusting the server's own certificate), and checks who can reach it.
func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := selfSigned(t)
	_, dbURL := dbtest.NewWithURL(t)
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { cleanQueueKeys(rdb, prefix) })
	cfg := config.Default()
	cfg.DatabaseURL, cfg.RedisURL, cfg.RedisPrefix = dbURL, redistest.URL(), prefix
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Migrate = false
	cfg.DataDir = t.TempDir()
	cfg.PollInterval, cfg.WatchPollInterval = 200*time.Millisecond, 200*time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	a, err := app.Build(ctx, cfg, discardLog(), app.RoleServer)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	srv, err := server.New(cfg, a.ServerDeps())
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); runErr <- srv.Run(runCtx) }()
	go func() { defer wg.Done(); a.Reconciler.Run(runCtx) }()
	grpcAddr, httpAddr, err := srv.Addrs(ctx)
	require.NoError(t, err)
	workCtx, stopWorkers := context.WithCancel(context.Background())
	workersDone := make(chan error, 1)
	go func() { workersDone <- a.RunWorkers(workCtx, grpcAddr, "") }()
	t.Cleanup(func() {
		stopWorkers()
		require.NoError(t, <-workersDone)
		stop()
		wg.Wait()
		require.NoError(t, <-runErr)
	})

	roots := x509.NewCertPool()
	certPEM, err := os.ReadFile(certFile)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(certPEM))

	t.Run("gRPC with the CA, and in-process workers", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		contentClient := pipelinev1.NewContentServiceClient(conn)
		src, err := contentClient.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "tls"})
		require.NoError(t, err)
		ing, err := contentClient.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{
			SourceId: src.GetSource().GetSourceId(), Documents: docInputs(2),
		})
		require.NoError(t, err)
		stream, err := pipelinev1.NewJobServiceClient(conn).WatchJob(tctx(t), &pipelinev1.WatchJobRequest{JobId: ing.GetJob().GetJobId()})
		require.NoError(t, err)
		// COMPLETED means the in-process workers reported over TLS.
		got := untilStatus(t, readStream(stream), pipelinev1.JobStatus_JOB_STATUS_COMPLETED, 0)
		require.EqualValues(t, 2, got[len(got)-1].GetProcessing().GetProcessedCount())
	})
	t.Run("gRPC without TLS fails", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		_, err = pipelinev1.NewContentServiceClient(conn).ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	})
	t.Run("gRPC with TLS but another CA fails", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool()})))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		_, err = pipelinev1.NewContentServiceClient(conn).ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	})
	t.Run("REST over https", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr, Timeout: waitTimeout}
		for _, path := range []string{"/healthz", "/v1/sources"} {
			req, err := http.NewRequestWithContext(tctx(t), http.MethodGet, "https://"+httpAddr+path, nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
			require.NotNil(t, resp.TLS)
			require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
		}
	})
	t.Run("REST over plain http is refused", func(t *testing.T) {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequestWithContext(tctx(t), http.MethodGet, "http://"+httpAddr+"/v1/sources", nil)
		require.NoError(t, err)
		resp, err := (&http.Client{Transport: tr, Timeout: waitTimeout}).Do(req)
		if err == nil {
			resp.Body.Close()
			require.NotEqual(t, http.StatusOK, resp.StatusCode)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}}
		conn, err := d.DialContext(tctx(t), "tcp", httpAddr)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err)
	})
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	certFile, keyFile := selfSigned(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	newServer := func(cert, key string) error {
		cfg := config.Default()
		cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
		_, err := server.New(cfg, server.Deps{Log: discardLog()})
		return err
	}
	for _, tc := range []struct {
		name, cert, key string
		want            []string
	}{
		{"cert only", certFile, "", []string{"PIPELINE_TLS_CERT_FILE", "PIPELINE_TLS_KEY_FILE", "both or neither"}},
		{"key only", "", keyFile, []string{"PIPELINE_TLS_CERT_FILE", "PIPELINE_TLS_KEY_FILE", "both or neither"}},
		{"unreadable cert", missing, keyFile, []string{"PIPELINE_TLS_CERT_FILE", "missing.pem"}},
		{"unreadable key", certFile, missing, []string{"PIPELINE_TLS_KEY_FILE", "missing.pem"}},
		{"key and cert swapped", keyFile, certFile, []string{"PIPELINE_TLS_CERT_FILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newServer(tc.cert, tc.key)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "PRIVATE KEY", "never the key's content")
		})
	}
	t.Run("Validate names both settings", func(t *testing.T) {
		cfg := config.Default()
		cfg.TLSCertFile = certFile
		err := cfg.Validate()
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), "PIPELINE_TLS_CERT_FILE") && strings.Contains(err.Error(), "PIPELINE_TLS_KEY_FILE"), err.Error())
	})
	t.Run("both files load", func(t *testing.T) {
		c, err := server.LoadServerTLS(config.Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
		require.NoError(t, err)
		require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
		c, err = server.LoadServerTLS(config.Config{})
		require.NoError(t, err)
		require.Nil(t, c, "no files, no TLS")
	})
	t.Run("worker CA file", func(t *testing.T) {
		_, err := server.ClientTLS(missing, "PIPELINE_TLS_CA_FILE")
		require.ErrorContains(t, err, "PIPELINE_TLS_CA_FILE")
		_, err = server.ClientTLS(keyFile, "PIPELINE_TLS_CA_FILE")
		require.ErrorContains(t, err, "no PEM certificate")
		c, err := server.ClientTLS(certFile, "PIPELINE_TLS_CA_FILE")
		require.NoError(t, err)
		require.NotNil(t, c.RootCAs)
	})
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
