package db

import "github.com/jackc/pgx/v5/pgtype"

// Texts is a text[] argument for large strings, such as a call's documents' contents. pgx
// builds a statement's arguments in one buffer that starts small for every statement and
// grows as each array element is appended, by a quarter at a time once it is large: 500 KB of
// contents were copied about five times over (and as often left to the garbage collector)
// before the statement was sent. A Texts grows the buffer once, to the whole array's size,
// before its elements are encoded. Registered on every connection of a pool opened here
// (OpenConfig); elsewhere it is encoded as the []string it is, only without the reservation.
type Texts []string

// registerTypes teaches a connection's type map the arguments of this package.
func registerTypes(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapTexts}, m.TryWrapEncodePlanFuncs...)
}

// tryWrapTexts puts textsPlan in front of the []string plan of a Texts.
func tryWrapTexts(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	t, ok := value.(Texts)
	if !ok {
		return nil, nil, false
	}
	return &textsPlan{}, []string(t), true
}

type textsPlan struct{ next pgtype.EncodePlan }

func (p *textsPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

// Encode reserves what the binary array takes (a 20-byte header for one dimension, then a
// 4-byte length and the bytes of each element; the text form is about as long) and lets the
// []string plan fill it.
func (p *textsPlan) Encode(value any, buf []byte) ([]byte, error) {
	t := value.(Texts)
	n := 20 + 4*len(t)
	for _, s := range t {
		n += len(s)
	}
	if cap(buf)-len(buf) < n {
		grown := make([]byte, len(buf), len(buf)+n)
		copy(grown, buf)
		buf = grown
	}
	return p.next.Encode([]string(t), buf)
}
