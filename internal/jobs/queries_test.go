package jobs

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryQueryLoaded: a field of queries left out of its initialiser would be an empty query,
// which pgx runs happily and which matches nothing.
func TestEveryQueryLoaded(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(queries)
	for i := range v.NumField() {
		require.NotEmpty(t, v.Field(i).String(), "queries.%s", v.Type().Field(i).Name)
	}
}
