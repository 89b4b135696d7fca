package ingest

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

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
// the ratio check, and holds the body to its minimum transfer rate.
type countingReader struct {
	r io.Reader
	n int64
	// pace, when set, moves the read deadline before each read: the body
	// must have arrived at minRate since start (after the grace), so a
	// slow client is cut off while a fast one is never near the deadline.
	pace     *http.ResponseController
	start    time.Time
	grace    time.Duration
	minRate  int64
	deadline time.Time
	eof      bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.pace != nil {
		c.deadline = c.start.Add(c.grace + time.Duration(c.n)*time.Second/time.Duration(c.minRate))
		if err := c.pace.SetReadDeadline(c.deadline); err != nil {
			// Not supported by this connection (a test recorder): no pace.
			c.pace = nil
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	if err != nil && err != io.EOF && c.pace != nil && !time.Now().Before(c.deadline) {
		return n, errTooSlow
	}
	return n, err
}

var errTooSlow = errors.New("body slower than the minimum rate")

// stopPacing lifts the deadline once the body has been read to its end.
// A body that was not (refused on the way, or too slow) is abandoned: the
// deadline moves to now, so that net/http does not wait for the rest at
// the client's trickle, and an HTTP/1.1 connection is closed after the
// answer rather than reused with a stale deadline.
func (c *countingReader) stopPacing(w http.ResponseWriter, r *http.Request) {
	if c.pace == nil {
		return
	}
	if c.eof {
		c.pace.SetReadDeadline(time.Time{})
		return
	}
	c.pace.SetReadDeadline(time.Now())
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// readBody returns the decompressed body in a pooled buffer (the caller
// gives it back with putBuffer). The size and the ratio are checked while
// decompressing, every chunk, so a bomb is refused after at most one chunk
// over the limit, never after it has been expanded. The body must arrive
// at l.MinBodyRate counted from start.
func readBody(w http.ResponseWriter, r *http.Request, l *Limits, res *reservation, start time.Time) (*[]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	if r.ContentLength > l.MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf("body of %d bytes, at most %d allowed", r.ContentLength, l.MaxBodyBytes))
	}
	body := &countingReader{r: http.MaxBytesReader(w, r.Body, l.MaxBodyBytes),
		pace: http.NewResponseController(w), start: start, grace: l.BodyGrace, minRate: l.MinBodyRate}
	defer body.stopPacing(w, r)

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
// never beyond one chunk over the size limit: doubling, the buffers it
// allocates sum to at most twice the largest.
func readLimited(buf *[]byte, src io.Reader, in *countingReader, l *Limits, res *reservation) error {
	b := *buf
	defer func() { *buf = b }()
	if cap(b) > 0 {
		if err := res.grow(int64(cap(b))); err != nil {
			return err
		}
	}
	for {
		if cap(b)-len(b) < readChunk {
			next := min(max(2*cap(b), len(b)+readChunk), int(l.MaxDecompressedBytes)+readChunk)
			// The outgrown buffer stays charged: it is garbage, but
			// memory until the collector runs.
			if err := res.grow(int64(next)); err != nil {
				return err
			}
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
	if errors.Is(err, errTooSlow) {
		return errorf(http.StatusRequestTimeout, wire.CodeTooSlow, "the body arrived slower than the minimum transfer rate")
	}
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
