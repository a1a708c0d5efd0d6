package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/pipeline-dev/pipeline/internal/config"
)

// LoadServerTLS loads the certificate and key named by PIPELINE_TLS_CERT_FILE and
// PIPELINE_TLS_KEY_FILE. It returns nil, and no error, when neither is set: TLS is off. An error
// names the setting whose file is at fault.
func LoadServerTLS(cfg config.Config) (*tls.Config, error) {
	certEnv, keyEnv := config.EnvName("tls-cert-file"), config.EnvName("tls-key-file")
	switch {
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile == "":
		return nil, nil
	case cfg.TLSCertFile == "" || cfg.TLSKeyFile == "":
		return nil, fmt.Errorf("%s and %s: set both or neither", certEnv, keyEnv)
	}
	certPEM, err := os.ReadFile(cfg.TLSCertFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certEnv, err)
	}
	keyPEM, err := os.ReadFile(cfg.TLSKeyFile)
	if err != nil {
		// The error names the file, never its content: it is a private key.
		return nil, fmt.Errorf("%s: %w", keyEnv, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s / %s: %w", certEnv, keyEnv, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ClientTLS is the TLS configuration of a client of this server: the certificates in the PEM file
// caFile are its roots, or the system's roots when caFile is "". setting names where caFile came
// from, for errors.
func ClientTLS(caFile, setting string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %w", setting, errors.New("no PEM certificate in "+caFile))
	}
	c.RootCAs = roots
	return c, nil
}
