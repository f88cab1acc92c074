package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime is the CPU time pid has used, summed over its threads from
// /proc/PID/task/*/schedstat (nanoseconds; the clock-tick counters in
// /proc/PID/stat are too coarse for a two-second step). Zero for pid 0.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total int64
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited between the glob and the read
		}
		if f := bytes.Fields(b); len(f) > 0 {
			n, _ := strconv.ParseInt(string(f[0]), 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}

// pinning says which CPUs the parts run on: the load generator, the
// simulator and PostgreSQL share one, the proxy under test has the other,
// so that "CPU per request" is the proxy's alone and the throughput ladder
// measures one core of proxy. Empty when taskset is missing or off.
type pinning struct{ load, proxy string }

func (p pinning) wrap(cpu string, argv []string) []string {
	if cpu == "" {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// proc is a process the bench started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs argv with its output in logPath and waits until addr accepts
// connections and, when health is set, answers it with 200.
func start(ctx context.Context, argv []string, env []string, logPath, addr, health string) (*proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("it exited at start; see %s", logPath)
		default:
		}
		if ready(addr, health) {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not come up on %s; see %s", argv[0], addr, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(addr, health string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	if health == "" {
		return true
	}
	resp, err := http.Get("http://" + addr + health)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// pid is the process to measure: the proxy itself, not taskset (which
// execs it, so they are the same process).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, as Kubernetes does, and waits.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// haveTaskset reports whether CPUs can be pinned.
func haveTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

func build(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}
