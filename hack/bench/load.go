package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is where a suite sends its requests: an address and the requests
// serialised once, so the load generator spends its time on the wire, not
// on building requests.
type target struct {
	addr   string
	plain  []byte // one non-streaming completion
	stream []byte // one streaming completion
}

// newTarget serialises the two requests as HTTP/1.1 with keep-alive.
func newTarget(addr, path string, header http.Header, plainBody, streamBody []byte) target {
	build := func(body []byte) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, addr, len(body))
		for k, vs := range header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		b.WriteString("\r\n")
		b.Write(body)
		return b.Bytes()
	}
	return target{addr: addr, plain: build(plainBody), stream: build(streamBody)}
}

// conn is one keep-alive connection of the load generator.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 32<<10)}, nil
}

func (c *conn) close() { _ = c.c.Close() }

// do sends one request and reads the whole response.
func (c *conn) do(req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// stream sends one streaming request and returns the time to its first
// SSE data line and the number of data lines.
func (c *conn) stream(req []byte) (ttfe time.Duration, events int, err error) {
	start := time.Now()
	if _, err := c.c.Write(req); err != nil {
		return 0, 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			if events == 0 {
				ttfe = time.Since(start)
			}
			events++
		}
		if errors.Is(err, io.EOF) {
			return ttfe, events, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

// latencies runs n requests one at a time after warmup and returns each
// request's latency, sorted.
func latencies(t target, warmup, n int) ([]time.Duration, error) {
	c, err := dial(t.addr)
	if err != nil {
		return nil, err
	}
	defer c.close()
	for range warmup {
		if err := c.do(t.plain); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	out := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if err := c.do(t.plain); err != nil {
			return nil, err
		}
		out[i] = time.Since(start)
	}
	slices.Sort(out)
	return out, nil
}

// step is one rung of the concurrency ladder.
type step struct {
	Concurrency int           `json:"concurrency"`
	Requests    int           `json:"requests"`
	RPS         float64       `json:"rps"`
	P50         time.Duration `json:"p50"`
	P99         time.Duration `json:"p99"`
	// CPU is the proxy's CPU time over the measured part of the step.
	CPU time.Duration `json:"cpu"`
}

// ladder runs c closed-loop clients for warm+dur and measures the last dur,
// reading the proxy's CPU (pid 0: none) around the measured part.
func ladder(ctx context.Context, t target, c int, warm, dur time.Duration, pid int) (step, error) {
	conns := make([]*conn, c)
	for i := range conns {
		cn, err := dial(t.addr)
		if err != nil {
			return step{}, err
		}
		defer cn.close()
		conns[i] = cn
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		mu        sync.Mutex
		all       []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	for _, cn := range conns {
		wg.Go(func() {
			var mine []time.Duration
			for !stop.Load() && ctx.Err() == nil {
				start := time.Now()
				if err := cn.do(t.plain); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				if measuring.Load() {
					mine = append(mine, time.Since(start))
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(warm)
	cpu0 := cpuTime(pid)
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1 := cpuTime(pid)
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return step{}, firstErr
	}
	slices.Sort(all)
	return step{
		Concurrency: c, Requests: len(all), RPS: float64(len(all)) / elapsed.Seconds(),
		P50: quantile(all, 0.50), P99: quantile(all, 0.99), CPU: cpu1 - cpu0,
	}, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// streams runs n streams one at a time after warmup; it returns the sorted
// times to first event, the events seen and the proxy's CPU over them.
func streams(t target, warmup, n, pid int) (ttfe []time.Duration, events int, cpu time.Duration, err error) {
	c, err := dial(t.addr)
	if err != nil {
		return nil, 0, 0, err
	}
	defer c.close()
	for range warmup {
		if _, _, err := c.stream(t.stream); err != nil {
			return nil, 0, 0, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpu0 := cpuTime(pid)
	for range n {
		d, e, err := c.stream(t.stream)
		if err != nil {
			return nil, 0, 0, err
		}
		ttfe = append(ttfe, d)
		events += e
	}
	cpu = cpuTime(pid) - cpu0
	slices.Sort(ttfe)
	return ttfe, events, cpu, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

func micros(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64)
}
