package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// operationsDoc is the configuration reference this test keeps in step with settings().
const operationsDoc = "../../docs/operations.md"

// docRow is one row of the reference: | `PIPELINE_X` | `--x` | default | meaning |.
type docRow struct {
	line                         int
	env, flag, defaults, meaning string
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

func readReference(t *testing.T) map[string]docRow {
	t.Helper()
	data, err := os.ReadFile(operationsDoc)
	require.NoError(t, err)
	rows := map[string]docRow{}
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `PIPELINE_") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		require.Len(t, cells, 4, "docs/operations.md:%d: a reference row has four cells: env | flag | default | meaning", i+1)
		env := strings.Trim(cells[0], "`")
		_, dup := rows[env]
		require.False(t, dup, "docs/operations.md:%d: %s is documented twice", i+1, env)
		rows[env] = docRow{line: i + 1, env: env, flag: cells[1], defaults: cells[2], meaning: strings.TrimSpace(cells[3])}
	}
	return rows
}

// TestOperationsDocListsEverySetting fails when a setting is missing from the configuration
// reference in docs/operations.md, documented with another flag or default, or when the
// reference documents a setting that no longer exists.
func TestOperationsDocListsEverySetting(t *testing.T) {
	t.Parallel()
	rows := readReference(t)
	c := Default()
	known := map[string]bool{}
	for _, s := range c.settings() {
		env := EnvName(s.flag)
		known[env] = true
		row, ok := rows[env]
		if !ok {
			t.Errorf("setting --%s (%s) is not in the configuration reference: add a row\n"+
				"  | `%s` | `--%s` | %s | <what it does> |\n"+
				"to the right table of docs/operations.md (## Configuration reference)",
				s.flag, env, env, s.flag, defaultCell(s))
			continue
		}
		require.Equal(t, "`--"+s.flag+"`", row.flag, "docs/operations.md:%d: the flag of %s", row.line, env)
		require.NotEmpty(t, row.meaning, "docs/operations.md:%d: say what %s does", row.line, env)
		if err := checkDefault(s, row.defaults); err != nil {
			t.Errorf("docs/operations.md:%d: the default of %s: %v (the code's default: %s)", row.line, env, err, defaultCell(s))
		}
	}
	for env, row := range rows {
		if !known[env] {
			t.Errorf("docs/operations.md:%d documents %s, which is not a setting of internal/config: remove the row", row.line, env)
		}
	}
}

// defaultCell is how the reference writes a setting's default.
func defaultCell(s setting) string {
	switch p := s.ptr.(type) {
	case *string:
		if *p == "" {
			return "none"
		}
		return "`" + *p + "`"
	case *[]string:
		if len(*p) == 0 {
			return "none"
		}
		return "`" + strings.Join(*p, ",") + "`"
	case *time.Duration:
		return "`" + shortDuration(*p) + "`"
	default:
		return fmt.Sprintf("`%v`", reflectValue(s.ptr))
	}
}

func reflectValue(ptr any) any {
	switch p := ptr.(type) {
	case *bool:
		return *p
	case *int:
		return *p
	case *float64:
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	return ptr
}

// shortDuration writes 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkDefault says whether cell (the first code span, or "none" for an empty value) is the
// setting's default.
func checkDefault(s setting, cell string) error {
	m := codeSpan.FindStringSubmatch(cell)
	if m == nil {
		if strings.HasPrefix(cell, "none") {
			switch p := s.ptr.(type) {
			case *string:
				if *p == "" {
					return nil
				}
			case *[]string:
				if len(*p) == 0 {
					return nil
				}
			}
			return fmt.Errorf("the reference says none")
		}
		return fmt.Errorf("write the default in `backticks` (or none for an empty one), got %q", cell)
	}
	v := m[1]
	switch p := s.ptr.(type) {
	case *string:
		if v != *p {
			return fmt.Errorf("the reference says %q", v)
		}
	case *[]string:
		if v != strings.Join(*p, ",") {
			return fmt.Errorf("the reference says %q", v)
		}
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil || b != *p {
			return fmt.Errorf("the reference says %q", v)
		}
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil || n != *p {
			return fmt.Errorf("the reference says %q", v)
		}
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f != *p {
			return fmt.Errorf("the reference says %q", v)
		}
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d != *p {
			return fmt.Errorf("the reference says %q", v)
		}
	default:
		return fmt.Errorf("unsupported setting type %T", s.ptr)
	}
	return nil
}
