package gateway

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

func getBuffer() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxPooledBuffer {
		return
	}
	bufPool.Put(b)
}

var errBodyReleased = errors.New("upstream request body already released")

// upstreamBody is a pooled request body shared by the readers the transport
// opens (the body itself and GetBody's replays). The Transport may close or
// even read a request body after RoundTrip returned, from another goroutine,
// so the buffer goes back to the pool only once the attempt and every reader
// are done; a read after that fails instead of seeing another request's bytes.
type upstreamBody struct {
	mu   sync.Mutex
	buf  *bytes.Buffer
	refs int
}

func newUpstreamBody() *upstreamBody {
	return &upstreamBody{buf: getBuffer(), refs: 1}
}

// reader opens a reader from the start of the body.
func (u *upstreamBody) reader() (io.ReadCloser, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.buf == nil {
		return nil, errBodyReleased
	}
	u.refs++
	return &upstreamBodyReader{u: u}, nil
}

func (u *upstreamBody) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.buf.Len()
}

// release drops one reference; the last returns the buffer.
func (u *upstreamBody) release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refs--
	if u.refs == 0 {
		putBuffer(u.buf)
		u.buf = nil
	}
}

type upstreamBodyReader struct {
	u      *upstreamBody
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
	r.u.release()
	return nil
}
