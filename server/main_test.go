package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: servers, streams and
// subscriptions must all end when their test does. taskq's schedulers are the exception: they
// sleep up to 1.5 s between rounds and notice a closed queue only when they wake.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/vmihailenco/taskq/v3/redisq.(*Queue).scheduler"))
}
