package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/wire"
)

// readChunk is how much is decompressed between two checks of the limits.
const readChunk = 32 << 10

var (
	gzipPool sync.Pool // *gzip.Reader
	zstdPool sync.Pool // *zstd.Decoder
	bufPool  = sync.Pool{New: func() any { return new([]byte) }}
)

// countingReader counts the compressed bytes the decompressor consumed, for
// the ratio check.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readBody returns the decompressed body in a pooled buffer (the caller
// gives it back with putBuffer). The size and the ratio are checked while
// decompressing, every chunk, so a bomb is refused after at most one chunk
// over the limit, never after it has been expanded.
func readBody(w http.ResponseWriter, r *http.Request, l *Limits, res *reservation) (*[]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	if r.ContentLength > l.MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf("body of %d bytes, at most %d allowed", r.ContentLength, l.MaxBodyBytes))
	}
	body := &countingReader{r: http.MaxBytesReader(w, r.Body, l.MaxBodyBytes)}

	var (
		src     io.Reader
		release func()
	)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		src = body
	case "gzip", "x-gzip":
		zr, err := getGzip(body)
		if err != nil {
			return nil, decodeError(err)
		}
		src, release = zr, func() { gzipPool.Put(zr) }
	case "zstd":
		zr, err := getZstd(body, l.MaxDecompressedBytes)
		if err != nil {
			return nil, decodeError(err)
		}
		src, release = zr, func() { zr.Reset(nil); zstdPool.Put(zr) }
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding, "Content-Encoding must be gzip, zstd or identity")
	}
	if release != nil {
		defer release()
	}

	buf := bufPool.Get().(*[]byte)
	*buf = (*buf)[:0]
	if err := readLimited(buf, src, body, l, res); err != nil {
		putBuffer(buf)
		return nil, err
	}
	return buf, nil
}

// readLimited decompresses into *buf chunk by chunk. It grows the buffer
// itself, reserving the memory from the budget before allocating it, and
// never beyond one chunk over the size limit.
func readLimited(buf *[]byte, src io.Reader, in *countingReader, l *Limits, res *reservation) error {
	b := *buf
	defer func() { *buf = b }()
	reserved := 0
	if cap(b) > 0 {
		if err := res.grow(memoryFactor * int64(cap(b))); err != nil {
			return err
		}
		reserved = cap(b)
	}
	for {
		if cap(b)-len(b) < readChunk {
			next := min(max(2*cap(b), len(b)+readChunk), int(l.MaxDecompressedBytes)+readChunk)
			if err := res.grow(memoryFactor * int64(next-reserved)); err != nil {
				return err
			}
			reserved = next
			nb := make([]byte, len(b), next)
			copy(nb, b)
			b = nb
		}
		n, err := src.Read(b[len(b):min(cap(b), len(b)+readChunk)])
		b = b[:len(b)+n]
		out := int64(len(b))
		if out > l.MaxDecompressedBytes {
			return errorf(http.StatusRequestEntityTooLarge, wire.CodeDecompressedTooLarge, fmt.Sprintf("body decompresses to more than %d bytes", l.MaxDecompressedBytes))
		}
		if out > minRatioCheck && out > l.MaxCompressionRatio*max(in.n, 1) {
			return errorf(http.StatusRequestEntityTooLarge, wire.CodeCompressionRatio, fmt.Sprintf("body decompresses more than %d times", l.MaxCompressionRatio))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return decodeError(err)
		}
	}
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf("body larger than %d bytes", tooLarge.Limit))
	}
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeDecompressedTooLarge, "zstd frame declares more than the allowed size")
	}
	// Truncated or corrupt compressed data; the detail says which.
	return errorf(http.StatusBadRequest, wire.CodeBadCompression, "cannot decompress the body: "+err.Error())
}

func getGzip(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			gzipPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

func getZstd(r io.Reader, maxOut int64) (*zstd.Decoder, error) {
	if zr, ok := zstdPool.Get().(*zstd.Decoder); ok {
		if err := zr.Reset(r); err != nil {
			zstdPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	// One goroutine-free decoder per request; the window and memory limits
	// stop a frame that claims a huge window before anything is allocated.
	return zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(maxOut)),
		zstd.WithDecoderMaxWindow(8<<20),
	)
}

func putBuffer(b *[]byte) {
	// Keep only ordinary buffers: one huge batch must not pin its memory.
	if cap(*b) <= 1<<20 {
		bufPool.Put(b)
	}
}

// checkText refuses what encoding/json would silently repair or take
// long over: invalid UTF-8 (it would become U+FFFD) and deep nesting.
func checkText(b []byte, maxDepth int) *apiError {
	if !utf8.Valid(b) {
		return errorf(http.StatusBadRequest, wire.CodeBadEncoding, "body is not valid UTF-8")
	}
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return errorf(http.StatusBadRequest, wire.CodeTooDeep, fmt.Sprintf("JSON nested deeper than %d levels", maxDepth))
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// decodeBatch decodes the body. A batch whose envelope is wrong is an
// error; an event that does not decode is reported in bad (index → message)
// and left zero in the batch, so the other events of the batch still count.
func decodeBatch(b []byte, maxEvents int) (batch provision.Batch, bad map[int]string, _ *apiError) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	err := d.Decode(&batch)
	if err == nil {
		if err := trailing(d); err != nil {
			return batch, nil, err
		}
		if len(batch.Events) > maxEvents {
			return batch, nil, tooMany(len(batch.Events), maxEvents)
		}
		return batch, nil, nil
	}
	// Slow path, for bad input only: decode the envelope with the events
	// left raw, then each event alone.
	var env struct {
		provision.Batch
		Events []json.RawMessage `json:"events"`
	}
	d = json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&env); err != nil {
		return batch, nil, jsonError(err)
	}
	if err := trailing(d); err != nil {
		return batch, nil, err
	}
	if len(env.Events) > maxEvents {
		return batch, nil, tooMany(len(env.Events), maxEvents)
	}
	batch = env.Batch
	batch.Events = make([]provision.Event, len(env.Events))
	bad = map[int]string{}
	for i, raw := range env.Events {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		d.DisallowUnknownFields()
		if err := d.Decode(&batch.Events[i]); err != nil {
			batch.Events[i] = provision.Event{}
			bad[i] = jsonError(err).Message
		}
	}
	return batch, bad, nil
}

func trailing(d *json.Decoder) *apiError {
	if _, err := d.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, wire.CodeBadJSON, "data after the batch object")
	}
	return nil
}

func tooMany(n, limit int) *apiError {
	return errorf(http.StatusBadRequest, wire.CodeTooManyEvents, fmt.Sprintf("%d events, at most %d allowed per batch", n, limit))
}

func jsonError(err error) *apiError {
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return errorf(http.StatusBadRequest, wire.CodeUnknownField, strings.TrimPrefix(msg, "json: "))
	}
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return errorf(http.StatusBadRequest, wire.CodeBadJSON, strings.TrimPrefix(msg, "json: "))
}
