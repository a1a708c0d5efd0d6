package milvusfake

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// The fake's whole expression language, which is exactly what the store writes:
//
//	expr := cond { "and" cond }
//	cond := field "==" literal | field ">=" integer | field "in" "[" [ literal { "," literal } ] "]"
//
// Strings are double-quoted with Go/Milvus escapes. Anything else (or, not, !=, <, parentheses,
// like, single quotes, a vector field, a type mismatch) is refused with an error naming it, so a
// store that starts writing a new form finds out in its tests instead of getting a silent guess.

type predicate func(r row) bool

type token struct {
	kind string // "ident", "string", "int", or the punctuation itself: "==", ">=", "[", "]", ","
	text string // as written
	str  string // the value of a string
	num  int64  // the value of an int
}

func tokenize(expr string) ([]token, error) {
	var toks []token
	for i := 0; i < len(expr); {
		ch := expr[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '_' || isLetter(ch):
			j := i + 1
			for j < len(expr) && (expr[j] == '_' || isLetter(expr[j]) || isDigit(expr[j])) {
				j++
			}
			toks = append(toks, token{kind: "ident", text: expr[i:j]})
			i = j
		case isDigit(ch) || (ch == '-' && i+1 < len(expr) && isDigit(expr[i+1])):
			j := i + 1
			for j < len(expr) && isDigit(expr[j]) {
				j++
			}
			n, err := strconv.ParseInt(expr[i:j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad integer %q", expr[i:j])
			}
			toks = append(toks, token{kind: "int", text: expr[i:j], num: n})
			i = j
		case ch == '"':
			j := i + 1
			for j < len(expr) && expr[j] != '"' {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			s, err := strconv.Unquote(expr[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("bad string literal %s: %v", expr[i:j+1], err)
			}
			toks = append(toks, token{kind: "string", text: expr[i : j+1], str: s})
			i = j + 1
		case strings.HasPrefix(expr[i:], "=="), strings.HasPrefix(expr[i:], ">="):
			toks = append(toks, token{kind: expr[i : i+2], text: expr[i : i+2]})
			i += 2
		case ch == '[' || ch == ']' || ch == ',':
			toks = append(toks, token{kind: string(ch), text: string(ch)})
			i++
		default:
			return nil, fmt.Errorf("unsupported character %q at offset %d", ch, i)
		}
	}
	return toks, nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// compile parses expr against the collection's schema. An empty expression matches every row.
func (c *collection) compile(expr string) (predicate, error) {
	if strings.TrimSpace(expr) == "" {
		return func(row) bool { return true }, nil
	}
	toks, err := tokenize(expr)
	if err != nil {
		return nil, fmt.Errorf("cannot parse expression %q: %w", expr, err)
	}
	p := &parser{toks: toks, c: c}
	pred, err := p.conjunction()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse expression %q: %w (the fake supports ==, >=, in [...] and \"and\")", expr, err)
	}
	return pred, nil
}

type parser struct {
	toks []token
	pos  int
	c    *collection
}

func (p *parser) next() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	t := p.toks[p.pos]
	p.pos++
	return t, true
}

func (p *parser) expect(kind string) (token, error) {
	t, more := p.next()
	if !more {
		return t, fmt.Errorf("expected %s at the end", kind)
	}
	if t.kind != kind {
		return t, fmt.Errorf("expected %s, got %q", kind, t.text)
	}
	return t, nil
}

func (p *parser) conjunction() (predicate, error) {
	var preds []predicate
	for {
		pred, err := p.condition()
		if err != nil {
			return nil, err
		}
		preds = append(preds, pred)
		if p.pos < len(p.toks) && p.toks[p.pos].kind == "ident" && p.toks[p.pos].text == "and" {
			p.pos++
			continue
		}
		break
	}
	return func(r row) bool {
		for _, pred := range preds {
			if !pred(r) {
				return false
			}
		}
		return true
	}, nil
}

func (p *parser) condition() (predicate, error) {
	ft, err := p.expect("ident")
	if err != nil {
		return nil, err
	}
	f, found := p.c.fields[ft.text]
	if !found {
		return nil, fmt.Errorf("field %s not exist", ft.text)
	}
	if f.GetDataType() == schemapb.DataType_FloatVector {
		return nil, fmt.Errorf("vector field %s cannot be filtered on", f.GetName())
	}
	op, more := p.next()
	if !more {
		return nil, fmt.Errorf("expected an operator after %s", f.GetName())
	}
	switch {
	case op.kind == "==":
		want, err := p.literal(f)
		if err != nil {
			return nil, err
		}
		return func(r row) bool { return r.values[f.GetName()] == want }, nil
	case op.kind == ">=":
		if f.GetDataType() != schemapb.DataType_Int64 {
			return nil, fmt.Errorf(">= is supported on Int64 fields only, %s is %s", f.GetName(), f.GetDataType())
		}
		t, err := p.expect("int")
		if err != nil {
			return nil, err
		}
		return func(r row) bool { v, _ := r.values[f.GetName()].(int64); return v >= t.num }, nil
	case op.kind == "ident" && op.text == "in":
		if _, err := p.expect("["); err != nil {
			return nil, err
		}
		set := map[any]bool{}
		for i := 0; ; i++ {
			if p.pos < len(p.toks) && p.toks[p.pos].kind == "]" {
				p.pos++
				break
			}
			if i > 0 {
				if _, err := p.expect(","); err != nil {
					return nil, err
				}
			}
			v, err := p.literal(f)
			if err != nil {
				return nil, err
			}
			set[v] = true
		}
		return func(r row) bool { return set[r.values[f.GetName()]] }, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", op.text)
}

// literal reads a value of f's type.
func (p *parser) literal(f *schemapb.FieldSchema) (any, error) {
	t, more := p.next()
	if !more {
		return nil, fmt.Errorf("expected a value for %s", f.GetName())
	}
	switch {
	case t.kind == "string" && f.GetDataType() == schemapb.DataType_VarChar:
		return t.str, nil
	case t.kind == "int" && f.GetDataType() == schemapb.DataType_Int64:
		return t.num, nil
	}
	return nil, fmt.Errorf("value %s does not fit field %s of type %s", t.text, f.GetName(), f.GetDataType())
}
