package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: servers, streams and
// subscriptions must all end when their test does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
