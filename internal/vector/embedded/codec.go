package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

// On-disk encoding, shared by the log and the snapshot.
//
// A file is a sequence of frames:
//
//	length  uint32 little-endian: bytes of payload, 1..maxPayload
//	crc     uint32 little-endian: CRC-32C (Castagnoli) of payload
//	payload
//
// A payload is one operation, whole: the log holds one frame per write call, so a crash tears at
// most the last call and never half of one. Payloads start with an op byte:
//
//	opUpsert        uvarint n, then n records
//	opDeleteDoc     string document id, varint fromIndex
//	opDeleteSource  string source id
//	opSnapshot      (first frame of a snapshot) string magic, uvarint version, dimension,
//	                generation, record count
//
// A record is: string id, source id, document id, varint chunk index, string text, title, uri,
// heading path, varint start offset, end offset, then dimension float32s little-endian (already
// unit length). A string is a uvarint length and its bytes.
const (
	opUpsert       byte = 1
	opDeleteDoc    byte = 2
	opDeleteSource byte = 3
	opSnapshot     byte = 4
)

const (
	frameHeader = 8
	// maxPayload bounds one frame; a larger length in a header is garbage, not a real entry.
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// op is one decoded payload.
type op struct {
	kind      byte
	records   []vector.Record // opUpsert
	id        string          // document id or source id
	fromIndex int             // opDeleteDoc
	snap      snapshotHeader  // opSnapshot
}

type snapshotHeader struct {
	version    uint64
	dim        int
	generation uint64
	count      int
}

const snapshotMagic = "pipeline-vector-snapshot"

// Builders return a whole frame: header room first, filled in by seal.

func newFrame(kind byte, sizeHint int) []byte {
	b := make([]byte, frameHeader, frameHeader+1+sizeHint)
	return append(b, kind)
}

func seal(frame []byte) ([]byte, error) {
	payload := frame[frameHeader:]
	if len(payload) > maxPayload {
		return nil, fmt.Errorf("one write of %d bytes is larger than the %d a log entry may hold: split the batch", len(payload), maxPayload)
	}
	binary.LittleEndian.PutUint32(frame[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(frame[4:8], crc32.Checksum(payload, castagnoli))
	return frame, nil
}

func encodeUpsert(records []vector.Record, dim int) ([]byte, error) {
	hint := 0
	for _, r := range records {
		hint += int(recordSize(r))
	}
	b := newFrame(opUpsert, hint+binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(records)))
	for _, r := range records {
		b = appendRecord(b, r, dim)
	}
	return seal(b)
}

func encodeDeleteDoc(documentID string, fromIndex int) ([]byte, error) {
	b := newFrame(opDeleteDoc, len(documentID)+2*binary.MaxVarintLen64)
	b = appendString(b, documentID)
	b = binary.AppendVarint(b, int64(fromIndex))
	return seal(b)
}

func encodeDeleteSource(sourceID string) ([]byte, error) {
	b := newFrame(opDeleteSource, len(sourceID)+binary.MaxVarintLen64)
	b = appendString(b, sourceID)
	return seal(b)
}

func encodeSnapshotHeader(h snapshotHeader) ([]byte, error) {
	b := newFrame(opSnapshot, 64)
	b = appendString(b, snapshotMagic)
	b = binary.AppendUvarint(b, h.version)
	b = binary.AppendUvarint(b, uint64(h.dim))
	b = binary.AppendUvarint(b, h.generation)
	b = binary.AppendUvarint(b, uint64(h.count))
	return seal(b)
}

// recordSize is about how many bytes a record takes encoded; it sizes buffers and measures live
// data against the log.
func recordSize(r vector.Record) int64 {
	strs := len(r.ID) + len(r.SourceID) + len(r.DocumentID) + len(r.Text) + len(r.Title) + len(r.URI) + len(r.HeadingPath)
	return int64(strs + 7*2 + 3*4 + 4*len(r.Vector))
}

func appendRecord(b []byte, r vector.Record, dim int) []byte {
	b = appendString(b, r.ID)
	b = appendString(b, r.SourceID)
	b = appendString(b, r.DocumentID)
	b = binary.AppendVarint(b, int64(r.ChunkIndex))
	b = appendString(b, r.Text)
	b = appendString(b, r.Title)
	b = appendString(b, r.URI)
	b = appendString(b, r.HeadingPath)
	b = binary.AppendVarint(b, r.StartOffset)
	b = binary.AppendVarint(b, r.EndOffset)
	for _, x := range r.Vector[:dim] {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadFrame marks a frame that is not whole: short, an impossible length or a wrong checksum.
// At the end of a log it is what a crash mid-write leaves behind.
var errBadFrame = errors.New("bad frame")

// frameReader reads frames from r, keeping the offset of the next one.
type frameReader struct {
	r      io.Reader
	offset int64 // of the next frame
	size   int64 // of the whole file, so an impossible length is caught before reading it
	buf    []byte
}

// next returns the next payload (valid until the following call), io.EOF at a clean end, or an
// error wrapping errBadFrame.
func (fr *frameReader) next() ([]byte, error) {
	var h [frameHeader]byte
	n, err := io.ReadFull(fr.r, h[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: %d of %d header bytes", errBadFrame, n, frameHeader)
	case err != nil:
		return nil, err
	}
	length := int64(binary.LittleEndian.Uint32(h[0:4]))
	sum := binary.LittleEndian.Uint32(h[4:8])
	if length == 0 || length > maxPayload {
		return nil, fmt.Errorf("%w: length %d", errBadFrame, length)
	}
	if end := fr.offset + frameHeader + length; end > fr.size {
		return nil, fmt.Errorf("%w: %d-byte payload runs %d bytes past the end", errBadFrame, length, end-fr.size)
	}
	if int64(cap(fr.buf)) < length {
		fr.buf = make([]byte, length)
	}
	payload := fr.buf[:length]
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return nil, fmt.Errorf("%w: short payload", errBadFrame)
		}
		return nil, err
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadFrame)
	}
	fr.offset += frameHeader + length
	return payload, nil
}

// decodeOp decodes a payload whose checksum matched. An error here is not a torn write: the
// bytes are what was written, so the format is one this code does not know.
func decodeOp(payload []byte, dim int) (op, error) {
	d := decoder{b: payload[1:]}
	o := op{kind: payload[0]}
	switch o.kind {
	case opUpsert:
		n := d.uvarint()
		// Each record takes at least its vector: a count beyond that is corrupt, and must not
		// size an allocation.
		if n > uint64(len(d.b)/(4*dim)+1) {
			return op{}, fmt.Errorf("upsert of %d records in %d bytes", n, len(d.b))
		}
		o.records = make([]vector.Record, n)
		vecs := make([]float32, int(n)*dim)
		for i := range o.records {
			o.records[i] = d.record(dim, vecs[i*dim:(i+1)*dim:(i+1)*dim])
		}
	case opDeleteDoc:
		o.id = d.string()
		o.fromIndex = int(d.varint())
	case opDeleteSource:
		o.id = d.string()
	case opSnapshot:
		if magic := d.string(); magic != snapshotMagic && d.err == nil {
			return op{}, fmt.Errorf("not a snapshot (magic %q)", magic)
		}
		o.snap.version = d.uvarint()
		o.snap.dim = int(d.uvarint())
		o.snap.generation = d.uvarint()
		o.snap.count = int(d.uvarint())
	default:
		return op{}, fmt.Errorf("unknown operation %d", o.kind)
	}
	if d.err != nil {
		return op{}, d.err
	}
	if len(d.b) != 0 {
		return op{}, fmt.Errorf("%d bytes left over after operation %d", len(d.b), o.kind)
	}
	return o, nil
}

type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("payload ends early")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) record(dim int, vec []float32) vector.Record {
	// One field after another: the order is the encoding.
	var r vector.Record
	r.ID = d.string()
	r.SourceID = d.string()
	r.DocumentID = d.string()
	r.ChunkIndex = int(d.varint())
	r.Text = d.string()
	r.Title = d.string()
	r.URI = d.string()
	r.HeadingPath = d.string()
	r.StartOffset = d.varint()
	r.EndOffset = d.varint()
	if d.err != nil {
		return r
	}
	if len(d.b) < 4*dim {
		d.err = errShort
		return r
	}
	for i := range vec {
		vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	d.b = d.b[4*dim:]
	r.Vector = vec
	return r
}
