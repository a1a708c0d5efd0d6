// Command healthcheck is the container image's health probe. The final image holds no shell,
// curl or wget (only the pipeline binary, this probe and CA certificates), so a compose or
// orchestrator health check of the server runs
//
//	healthcheck http://127.0.0.1:8080/readyz
//
// It GETs the URL once and exits 0 when the answer is 2xx, 1 otherwise (Docker reserves 2),
// printing the status and the start of the body: /readyz answers which dependency is down, and
// Docker keeps a health check's output for `docker inspect`. Redirects count as unhealthy.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes Docker gives meaning to.
const (
	healthy   = 0
	unhealthy = 1
)

// maxBody is how much of the answer is printed.
const maxBody = 2048

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	caFile := fs.String("ca", "", "PEM file of the CAs to trust for an https URL (default: the system's)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] [-ca FILE] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return unhealthy
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return unhealthy
	}
	target, err := checkURL(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return unhealthy
	}
	client, err := newClient(*timeout, *caFile)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return unhealthy
	}
	resp, err := client.Get(target)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return unhealthy
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	line := strings.TrimSpace(resp.Status + " " + strings.TrimSpace(string(body)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(stderr, "healthcheck: unhealthy:", line)
		return unhealthy
	}
	fmt.Fprintln(stdout, line)
	return healthy
}

func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("want an http:// or https:// URL, got %q", raw)
	}
	return u.String(), nil
}

func newClient(timeout time.Duration, caFile string) (*http.Client, error) {
	if timeout <= 0 {
		return nil, errors.New("-timeout must be positive")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // a probe of the local process never goes through a proxy
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca: no PEM certificate in %s", caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}
