package gateway

import (
	"encoding/hex"
	"testing"
	"time"
)

// Request ids are 128 bits in hex, all distinct, and sort in the order
// they were made across milliseconds (the ledger's key grows at its end).
func TestRequestIDs(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := newRequestID(at.Add(time.Duration(i) * time.Millisecond))
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("id %q is not 128 bits in hex", id)
		}
		if seen[id] || id <= prev {
			t.Fatalf("id %q after %q: repeated or out of order", id, prev)
		}
		seen[id], prev = true, id
	}
	for range 1000 { // within one millisecond: still distinct
		id := newRequestID(at)
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
