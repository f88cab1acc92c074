// Command bench measures what the gateway adds to a model request, against
// the floor — a bare, tuned httputil.ReverseProxy — in the same run, both in
// front of the provider simulator on loopback. `make bench` runs it.
//
// The load generator, the simulator and PostgreSQL share one CPU and the
// proxy under test has the other (taskset), so CPU per request is the
// proxy's own and the throughput ladder measures one core of proxy. Each
// repetition runs the same suite directly against the simulator and through
// every proxy, in a rotating order; "added" figures are the difference to
// the direct run of the same repetition, and the table shows the median
// over repetitions. The machine is shared and noisy: read the ratios to the
// floor, not the absolute numbers.
//
// The suite: n requests one at a time (added p50 and p99); a closed-loop
// ladder of concurrency steps (the highest throughput whose p99 is under
// 5 ms, and CPU per request at the top step); streams of -events content
// events one at a time (time to first event, CPU per event).
//
// The gateway runs on the config the operator renders for a ChatGateway
// with a daily quota far from its limit, metering per person, the token
// and the email header a sidecar would add, logging as the operator runs
// it (a line per request; -log-level to change that), and the store
// named by -stores: none (quota in memory), sqlite (the Embedded store) or
// postgres (a throwaway local server with fsync on).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	simKey    = "bench-sim-key"
	benchUser = "alice@example.com"
	model     = "gpt-4o-mini"
)

type options struct {
	root, gateway, out  string
	stores              []string
	reps, n, warmup     int
	ladder              []int
	stepDur, stepWarmup time.Duration
	streams, events     int
	eventGap            time.Duration
	anthropic           bool
	pin                 string
	logLevel            string
	// profile, when set, is a folder for CPU profiles of each gateway
	// over its top ladder step in the last repetition.
	profile string
}

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "sim":
			err = runSim(os.Args[2:])
		case "floor":
			err = runFloor(os.Args[2:])
		default:
			err = runBench(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := runBench(nil); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.root, "root", ".", "the project's root (to build ./cmd/gateway)")
	fs.StringVar(&o.gateway, "gateway", "", "gateway binary to measure (default: build ./cmd/gateway)")
	fs.StringVar(&o.out, "out", "", "results folder (default bin/bench/<time>)")
	stores := fs.String("stores", "none,sqlite,postgres", "gateway variants: none, sqlite, postgres")
	fs.IntVar(&o.reps, "reps", 3, "repetitions")
	fs.IntVar(&o.n, "n", 3000, "requests one at a time per repetition")
	fs.IntVar(&o.warmup, "warmup", 300, "warm-up requests before the one-at-a-time phase")
	lad := fs.String("ladder", "1,2,4,8,16,32", "concurrency steps")
	fs.DurationVar(&o.stepDur, "step", 2*time.Second, "measured time per ladder step")
	fs.DurationVar(&o.stepWarmup, "step-warmup", 300*time.Millisecond, "unmeasured time before each step")
	fs.IntVar(&o.streams, "streams", 150, "streams one at a time per repetition")
	fs.IntVar(&o.events, "events", 20, "content events per stream")
	fs.DurationVar(&o.eventGap, "event-gap", time.Millisecond, "the simulator's pause between events")
	fs.BoolVar(&o.anthropic, "anthropic", false, "Anthropic front and provider instead of OpenAI's")
	fs.StringVar(&o.logLevel, "log-level", "info", "the gateway's --log-level (info, as the operator runs it, logs a line per request)")
	fs.StringVar(&o.pin, "pin", "0:1", "CPUs as LOAD:PROXY for taskset, or none")
	fs.StringVar(&o.profile, "profile", "", "folder for CPU profiles of each gateway over its top ladder step and its streams, of the last repetition (go tool pprof)")
	quick := fs.Bool("quick", false, "a smoke run: one repetition, small counts")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.stores = strings.Split(*stores, ",")
	for _, s := range o.stores {
		if s != "none" && s != "sqlite" && s != "postgres" {
			return o, fmt.Errorf("-stores: %q is not none, sqlite or postgres", s)
		}
	}
	for _, f := range strings.Split(*lad, ",") {
		var c int
		if _, err := fmt.Sscan(f, &c); err != nil || c < 1 {
			return o, fmt.Errorf("-ladder: %q is not a concurrency", f)
		}
		o.ladder = append(o.ladder, c)
	}
	if *quick {
		o.reps, o.n, o.warmup, o.streams = 1, 500, 100, 30
		o.ladder, o.stepDur, o.stepWarmup = []int{1, 8, 32}, 500*time.Millisecond, 100*time.Millisecond
	}
	if o.out == "" {
		o.out = filepath.Join(o.root, "bin", "bench", time.Now().Format("20060102-150405"))
	}
	return o, nil
}

// suite is one run of the measurements against one target.
type suite struct {
	P50, P99    time.Duration
	Steps       []step
	TTFE        time.Duration
	StreamCPU   time.Duration
	Events      int
	StreamCount int
}

func (s suite) top() step { return s.Steps[len(s.Steps)-1] }

// bestRPS is the highest throughput among the steps whose p99 is under bound.
func (s suite) bestRPS(bound time.Duration) (float64, bool) {
	best, ok := 0.0, false
	for _, st := range s.Steps {
		if st.P99 < bound && st.RPS > best {
			best, ok = st.RPS, true
		}
	}
	return best, ok
}

// runSuite runs the suite against t; profile, when set, is where to save
// a CPU profile taken from debugAddr over the top ladder step, and one
// (named -sse) over the first seconds of the streams.
func runSuite(ctx context.Context, o options, t target, pid int, debugAddr, profile string) (suite, error) {
	var s suite
	lat, err := latencies(t, o.warmup, o.n)
	if err != nil {
		return s, fmt.Errorf("one at a time: %w", err)
	}
	s.P50, s.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	var profiled <-chan struct{}
	for i, c := range o.ladder {
		if profile != "" && debugAddr != "" && i == len(o.ladder)-1 {
			profiled = saveProfile(debugAddr, profile, o.stepWarmup, o.stepDur)
		}
		st, err := ladder(ctx, t, c, o.stepWarmup, o.stepDur, pid)
		if err != nil {
			return s, fmt.Errorf("ladder c=%d: %w", c, err)
		}
		s.Steps = append(s.Steps, st)
	}
	if profiled != nil {
		<-profiled // one CPU profile at a time
		done := saveProfile(debugAddr, strings.TrimSuffix(profile, ".pprof")+"-sse.pprof", 0, 4*time.Second)
		defer func() { <-done }()
	}
	ttfe, events, cpu, err := streams(t, 5, o.streams, pid)
	if err != nil {
		return s, fmt.Errorf("streams: %w", err)
	}
	s.TTFE, s.Events, s.StreamCPU, s.StreamCount = quantile(ttfe, 0.5), events, cpu, len(ttfe)
	return s, nil
}

// proxy is one thing measured against the direct path.
type proxy struct {
	label  string
	target target
	proc   *proc
	// debug is the gateway's profiler address, when -profile is set.
	debug string
}

// saveProfile fetches a CPU profile of dur, after wait, from the
// profiler at addr into path.
func saveProfile(addr, path string, wait, dur time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(wait)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(dur/time.Second))))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return done
}

func runBench(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pin := pinning{}
	if o.pin != "none" && haveTaskset() {
		load, prox, ok := strings.Cut(o.pin, ":")
		if !ok {
			return fmt.Errorf("-pin: want LOAD:PROXY, got %q", o.pin)
		}
		if os.Getenv("BENCH_PINNED") == "" {
			// Pin this process (the load generator) and, through
			// inheritance, the simulator and PostgreSQL.
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", load, self}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), "BENCH_PINNED=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			return cmd.Run()
		}
		pin = pinning{load: load, proxy: prox}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if o.gateway == "" {
		o.gateway = filepath.Join(o.out, "gateway")
		fmt.Fprintln(os.Stderr, "Building ./cmd/gateway …")
		if err := build(ctx, o.root, o.gateway, "./cmd/gateway"); err != nil {
			return err
		}
	}

	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	sim, err := start(ctx, []string{self, "sim", "-listen", simAddr, "-chunks", fmt.Sprint(o.events), "-event-delay", o.eventGap.String()},
		nil, filepath.Join(o.out, "sim.log"), simAddr, "")
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer sim.stop()
	simURL := "http://" + simAddr

	plain, streamBody := requestBodies(o.anthropic)
	path, direct := "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + simKey}}
	if o.anthropic {
		path, direct = "/v1/messages", http.Header{"X-Api-Key": {simKey}, "Anthropic-Version": {"2023-06-01"}}
	}
	directTarget := newTarget(simAddr, path, direct, plain, streamBody)

	var proxies []proxy
	defer func() {
		for _, p := range proxies {
			p.proc.stop()
		}
	}()
	floorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	fp, err := start(ctx, pin.wrap(pin.proxy, []string{self, "floor", "-listen", floorAddr, "-upstream", simURL}),
		nil, filepath.Join(o.out, "floor.log"), floorAddr, "")
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	proxies = append(proxies, proxy{label: "floor", target: newTarget(floorAddr, path, direct, plain, streamBody), proc: fp})

	var pg *postgres
	for _, store := range o.stores {
		if store == "postgres" && pg == nil {
			if pg, err = startPostgres(ctx); err != nil {
				return err
			}
			defer pg.stop()
		}
		gw, err := startGateway(ctx, o, pin, store, simURL, pg)
		if err != nil {
			return fmt.Errorf("gateway (%s): %w", store, err)
		}
		proxies = append(proxies, gw)
	}

	fmt.Fprintf(os.Stderr, "Pinning: %s. Results in %s\n", describePin(pin), o.out)
	results := map[string][]suite{}
	for rep := range o.reps {
		d, err := runSuite(ctx, o, directTarget, 0, "", "")
		if err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		results["direct"] = append(results["direct"], d)
		// Rotate the order so no proxy always runs right after another.
		order := slices.Clone(proxies)
		for range rep % len(order) {
			order = append(order[1:], order[0])
		}
		for _, p := range order {
			fmt.Fprintf(os.Stderr, "Repetition %d/%d: %s\n", rep+1, o.reps, p.label)
			profile := ""
			if o.profile != "" && rep == o.reps-1 {
				profile = filepath.Join(o.profile, strings.NewReplacer(", ", "-", " ", "-").Replace(p.label)+".pprof")
			}
			s, err := runSuite(ctx, o, p.target, p.proc.pid(), p.debug, profile)
			if err != nil {
				return fmt.Errorf("%s: %w", p.label, err)
			}
			results[p.label] = append(results[p.label], s)
		}
	}
	labels := []string{}
	for _, p := range proxies {
		labels = append(labels, p.label)
	}
	rows := summarise(results, labels)
	if b, err := json.MarshalIndent(map[string]any{"options": o.describe(), "suites": results, "rows": rows}, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(o.out, "results.json"), b, 0o644)
	}
	printTable(os.Stdout, o, pin, rows)
	return nil
}

func describePin(p pinning) string {
	if p.proxy == "" {
		return "none (taskset missing or -pin none)"
	}
	return fmt.Sprintf("load generator, simulator and PostgreSQL on CPU %s, proxy on CPU %s", p.load, p.proxy)
}

func (o options) describe() map[string]any {
	return map[string]any{
		"stores": o.stores, "reps": o.reps, "n": o.n, "ladder": o.ladder, "step": o.stepDur.String(),
		"streams": o.streams, "events": o.events, "eventGap": o.eventGap.String(), "anthropic": o.anthropic, "pin": o.pin,
	}
}

func requestBodies(anthropic bool) (plain, stream []byte) {
	const content = `"messages":[{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":64`
	// Both dialects take this body: model, messages, max_tokens.
	m := benchModel(anthropic)
	plain = []byte(`{"model":"` + m + `",` + content + `}`)
	stream = []byte(`{"model":"` + m + `",` + content + `,"stream":true}`)
	return plain, stream
}
