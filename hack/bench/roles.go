package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// The bench binary also plays two parts as child processes, so that each
// runs pinned to its CPU: the simulator and the floor.

// runSim serves the provider simulator: the same stand-in the tests use,
// with no request log (a load run would grow it without bound).
func runSim(args []string) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	chunks := fs.Int("chunks", 20, "content deltas per streamed reply")
	delay := fs.Duration("event-delay", time.Millisecond, "pause between streamed events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sim := providersim.New(providersim.Options{APIKey: simKey, Chunks: *chunks, EventDelay: *delay, NoRecord: true})
	return serve(*listen, sim)
}

// runFloor is the floor: a bare httputil.ReverseProxy tuned as a careful
// operator would tune one (a deep idle pool, no compression, no HTTP/2 on
// loopback, pooled 32 KiB copy buffers, every SSE event flushed). It adds
// nothing a gateway must do, so the gateway's figures over it are the price
// of identity, quotas, translation and metering.
func runFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	upstream := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream: want a URL, got %q", *upstream)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = u.Host
			// The inbound body handed straight to the Transport is cut
			// now and then when the server closes it early
			// (golang/go#40747); a bounded reader over it is not.
			r.Out.Body = io.NopCloser(io.LimitReader(r.In.Body, r.In.ContentLength))
		},
		Transport:     tr,
		FlushInterval: -1,
		BufferPool:    bufferPool{},
	}
	return serve(*listen, rp)
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

func serve(addr string, h http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
