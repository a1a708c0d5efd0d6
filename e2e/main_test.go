package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind (taskq's sleeping schedulers
// excepted: they notice a closed queue only when they wake).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/vmihailenco/taskq/v3/redisq.(*Queue).scheduler"))
}
