package metering

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Entry is one billed request: who, what, how much. It never holds content.
type Entry struct {
	Time time.Time
	// RequestID is the gateway's own id for the request: the ledger's key.
	RequestID string
	// ClientRequestID is the caller's X-Request-Id, for correlation only.
	ClientRequestID string
	// User is the caller's email; the ledger is the one place it is kept,
	// because per-user spend and quotas need it.
	User      string
	Model     string // the alias that served
	Requested string // the alias asked for ("auto", or before a fallback); Model when empty
	Provider  string
	Usage     Usage
	// Images counts the pictures an image model made, priced per picture
	// into Cost (Usage is then zero).
	Images int64
	Cost   Picodollars
	Status int
	// Provisional marks the row of a request still streaming: what it has
	// cost so far. A later entry with the same RequestID replaces it.
	Provisional bool
	// Lease, on a request's final entry, is the quota lease its cost is
	// settled against, in the transaction that writes the row.
	Lease string
}

// statusString is the ledger's status: the HTTP status, or "incomplete"
// for a provisional row (what a process killed mid-stream leaves).
func statusString(e Entry) string {
	if e.Provisional {
		return "incomplete"
	}
	return strconv.Itoa(e.Status)
}

// Ledger records spend. The gateway calls Record with a request's final
// entry just before the answer's last bytes are written (or once it ended
// otherwise), with a context that outlives the client connection.
type Ledger interface {
	Record(ctx context.Context, e Entry) error
}

// MemoryLedger keeps entries in memory, for tests and gateways without a store.
type MemoryLedger struct {
	mu      sync.Mutex
	entries []Entry
	// provisional indexes the entries still provisional by request id, so
	// that Record costs the same however many entries there are.
	provisional map[string]int
}

// Record appends e, or replaces the provisional entry of its request.
func (l *MemoryLedger) Record(_ context.Context, e Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.provisional[e.RequestID]; ok {
		l.entries[i] = e
		if !e.Provisional {
			delete(l.provisional, e.RequestID)
		}
		return nil
	}
	if e.Provisional {
		if l.provisional == nil {
			l.provisional = map[string]int{}
		}
		l.provisional[e.RequestID] = len(l.entries)
	}
	l.entries = append(l.entries, e)
	return nil
}

// Entries returns a copy of every entry in order.
func (l *MemoryLedger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Spend sums the cost recorded for user.
func (l *MemoryLedger) Spend(user string) Picodollars {
	l.mu.Lock()
	defer l.mu.Unlock()
	var total Picodollars
	for _, e := range l.entries {
		if e.User == user {
			total += e.Cost
		}
	}
	return total
}
