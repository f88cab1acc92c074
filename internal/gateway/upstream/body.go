package upstream

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// maxPooledBuffer keeps one oversized request (an image, say) from pinning
// its buffer in the pool for the life of the process.
const maxPooledBuffer = 4 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// GetBuffer takes an empty buffer from the pool the request path shares.
func GetBuffer() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// PutBuffer returns b to the pool; nil and oversized buffers are dropped.
func PutBuffer(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxPooledBuffer {
		return
	}
	bufPool.Put(b)
}

var errBodyReleased = errors.New("upstream request body already released")

// Body is a pooled request body shared by the readers the transport
// opens (the body itself and GetBody's replays). The Transport may close or
// even read a request body after RoundTrip returned, from another goroutine,
// so the buffer goes back to the pool only once the attempt and every reader
// are done; a read after that fails instead of seeing another request's bytes.
type Body struct {
	mu   sync.Mutex
	buf  *bytes.Buffer
	refs int
}

// NewBody holds a pooled buffer for one attempt; Release it when done.
func NewBody() *Body {
	return &Body{buf: GetBuffer(), refs: 1}
}

// Buffer is where the attempt writes the body, before sending it.
func (u *Body) Buffer() *bytes.Buffer { return u.buf }

// reader opens a reader from the start of the body.
func (u *Body) reader() (io.ReadCloser, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.buf == nil {
		return nil, errBodyReleased
	}
	u.refs++
	return &upstreamBodyReader{u: u}, nil
}

// copyBytes is a copy of the body, for a request the Transport may keep
// reading after the attempt released the buffer.
func (u *Body) copyBytes() ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.buf == nil {
		return nil, errBodyReleased
	}
	return bytes.Clone(u.buf.Bytes()), nil
}

func (u *Body) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.buf.Len()
}

// release drops one reference; the last returns the buffer.
func (u *Body) Release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refs--
	if u.refs == 0 {
		PutBuffer(u.buf)
		u.buf = nil
	}
}

type upstreamBodyReader struct {
	u      *Body
	off    int
	closed bool
}

func (r *upstreamBodyReader) Read(p []byte) (int, error) {
	r.u.mu.Lock()
	defer r.u.mu.Unlock()
	if r.closed || r.u.buf == nil {
		return 0, errBodyReleased
	}
	b := r.u.buf.Bytes()
	if r.off >= len(b) {
		return 0, io.EOF
	}
	n := copy(p, b[r.off:])
	r.off += n
	return n, nil
}

func (r *upstreamBodyReader) Close() error {
	r.u.mu.Lock()
	if r.closed {
		r.u.mu.Unlock()
		return nil
	}
	r.closed = true
	r.u.mu.Unlock()
	r.u.Release()
	return nil
}
