package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the heap growth that triggers a collection. The gateway's
// live heap serving a steady load is small (about 5 MiB: its config,
// metrics, pools), while every request allocates its decoded body, the
// translated one and the reply. At Go's default of 100 the collector
// then runs every few MiB allocated — dozens of times a second at a few
// thousand requests a second, each cycle a few milliseconds of CPU on a
// one-core proxy (GODEBUG=gctrace=1 under `make bench`). Collecting at
// 400% runs it a fifth as often for some 20 MiB more resident memory.
const gcPercent = 400

// memoryLimitShare is the part of the container's memory limit the heap
// is kept under (a soft limit: the collector runs sooner as the heap
// nears it), so that a large import does not get the pod killed.
const memoryLimitShare = 0.9

// tuneGC sets the collector's pace unless GOGC or GOMEMLIMIT in the
// environment already do.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if limit, ok := cgroupMemoryLimit("/sys/fs/cgroup"); ok {
			debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
		}
	}
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup as a
// container sees it under root: cgroup v2's memory.max, else v1's
// memory.limit_in_bytes; false when there is none.
func cgroupMemoryLimit(root string) (int64, bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// v1 writes an unset limit as the largest page-aligned int64.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
