package dbtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Querier is what a pool, a connection and a transaction offer for one row.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PlanReads explains stmt on q (EXPLAIN (FORMAT JSON), nothing run) and returns how its plan
// reads tables, in plan order: an index's name, or "seq scan of <table>"; and the plan as
// indented JSON, for a failure's message.
func PlanReads(t testing.TB, q Querier, stmt string) ([]string, string) {
	t.Helper()
	var plan []map[string]any
	if err := q.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+stmt).Scan(&plan); err != nil {
		t.Fatalf("explain %s: %v", stmt, err)
	}
	out, _ := json.MarshalIndent(plan, "", "  ")
	return planReads(plan[0]["Plan"]), string(out)
}

func planReads(node any) []string {
	m, ok := node.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	switch m["Node Type"] {
	case "Seq Scan":
		out = append(out, fmt.Sprint("seq scan of ", m["Relation Name"]))
	case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
		out = append(out, fmt.Sprint(m["Index Name"]))
	}
	children, _ := m["Plans"].([]any)
	for _, c := range children {
		out = append(out, planReads(c)...)
	}
	return out
}
