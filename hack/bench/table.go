package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// p99Bound is the latency bound of the throughput figure.
const p99Bound = 5 * time.Millisecond

// row is one proxy's figures, each the median over repetitions.
type row struct {
	Label string `json:"label"`
	// Added over the direct call, one request at a time.
	AddedP50 time.Duration `json:"addedP50"`
	AddedP99 time.Duration `json:"addedP99"`
	// CPUPerRequest at the ladder's top step.
	CPUPerRequest time.Duration `json:"cpuPerRequest"`
	// RPS is the highest throughput with p99 under p99Bound; when no step
	// met it, RPSMet is false and RPS, P99 are the top step's.
	RPS    float64       `json:"rps"`
	RPSMet bool          `json:"rpsMet"`
	TopP99 time.Duration `json:"topP99"`
	// SSECPUPerEvent is the proxy's CPU over the streams per event.
	SSECPUPerEvent time.Duration `json:"sseCPUPerEvent"`
	// TTFEAdded is the time to first event added over the direct call.
	TTFEAdded time.Duration `json:"ttfeAdded"`
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func summarise(results map[string][]suite, labels []string) []row {
	direct := results["direct"]
	var rows []row
	for _, l := range labels {
		var p50, p99, cpu, ev, ttfe, topP99 []time.Duration
		var rps []float64
		met := 0
		for i, s := range results[l] {
			d := direct[i]
			p50 = append(p50, s.P50-d.P50)
			p99 = append(p99, s.P99-d.P99)
			top := s.top()
			if top.Requests > 0 {
				cpu = append(cpu, top.CPU/time.Duration(top.Requests))
			}
			if r, ok := s.bestRPS(p99Bound); ok {
				rps = append(rps, r)
				met++
			} else {
				rps = append(rps, top.RPS)
				topP99 = append(topP99, top.P99)
			}
			if s.Events > 0 {
				ev = append(ev, s.StreamCPU/time.Duration(s.Events))
			}
			ttfe = append(ttfe, s.TTFE-d.TTFE)
		}
		rows = append(rows, row{
			Label: l, AddedP50: median(p50), AddedP99: median(p99), CPUPerRequest: median(cpu),
			RPS: median(rps), RPSMet: met*2 > len(results[l]), TopP99: median(topP99),
			SSECPUPerEvent: median(ev), TTFEAdded: median(ttfe),
		})
	}
	return rows
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func printTable(w io.Writer, o options, pin pinning, rows []row) {
	front := "OpenAI front, OpenAI-compatible provider"
	if o.anthropic {
		front = "Anthropic front, Anthropic provider"
	}
	fmt.Fprintf(w, "\n%s; %d repetition(s), medians; pinning: %s\n", front, o.reps, describePin(pin))
	fmt.Fprintf(w, "one at a time: %d requests; ladder %v, %s a step; %d streams of %d events, %s apart\n\n",
		o.n, o.ladder, o.stepDur, o.streams, o.events, o.eventGap)
	fmt.Fprintln(w, "| | added p50, c=1 | added p99, c=1 | CPU/request, c="+fmt.Sprint(o.ladder[len(o.ladder)-1])+" | req/s with p99 < 5 ms | SSE CPU/event | time to first event, added |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		rps := fmt.Sprintf("%.0f", r.RPS)
		if !r.RPSMet {
			rps = fmt.Sprintf("none (%.0f at p99 %s)", r.RPS, r.TopP99.Round(100*time.Microsecond))
		}
		fmt.Fprintf(w, "| %s | +%s | +%s | %s | %s | %s | +%s |\n", r.Label, us(r.AddedP50), us(r.AddedP99), us(r.CPUPerRequest), rps, us(r.SSECPUPerEvent), us(r.TTFEAdded))
	}
	if len(rows) < 2 || rows[0].Label != "floor" {
		return
	}
	f := rows[0]
	fmt.Fprintln(w, "\nRatios to the floor (CPU also as a difference):")
	fmt.Fprintln(w, "\n| | added p50 | added p99 | CPU/request | throughput | SSE CPU/event | time to first event |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows[1:] {
		thr := ratio(r.RPS, f.RPS)
		if !r.RPSMet || !f.RPSMet {
			thr += " (bound not met)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s (%+.0f µs) | %s | %s | %s |\n", r.Label,
			ratio(float64(r.AddedP50), float64(f.AddedP50)), ratio(float64(r.AddedP99), float64(f.AddedP99)),
			ratio(float64(r.CPUPerRequest), float64(f.CPUPerRequest)), float64(r.CPUPerRequest-f.CPUPerRequest)/float64(time.Microsecond),
			thr, ratio(float64(r.SSECPUPerEvent), float64(f.SSECPUPerEvent)), ratio(float64(r.TTFEAdded), float64(f.TTFEAdded)))
	}
}
