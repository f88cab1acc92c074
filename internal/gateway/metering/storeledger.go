package metering

import (
	"context"
	"strconv"
	"sync"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// StoreLedger writes each request's spend to the store's ledger.
//
// A request billed while it streams has its row written when the stream
// starts and revised as output arrives (provisional entries, with status
// "incomplete"); its final entry replaces that row. Every other entry is
// insert-once, so a caller repeating an X-Request-Id can neither bill
// twice nor overwrite an earlier bill: only ids this process wrote a
// provisional row for are ever revised.
type StoreLedger struct {
	st store.Ledger
	// provisional holds the request ids with a provisional row and no final one yet.
	provisional sync.Map
}

// NewStoreLedger writes to st.
func NewStoreLedger(st store.Ledger) *StoreLedger { return &StoreLedger{st: st} }

// Record implements Ledger.
func (l *StoreLedger) Record(ctx context.Context, e Entry) error {
	se := spendEntry(e)
	if e.Provisional {
		l.provisional.Store(e.RequestID, struct{}{})
		se.Status = statusIncomplete
		return l.st.ReviseSpend(ctx, se)
	}
	if _, ok := l.provisional.LoadAndDelete(e.RequestID); ok {
		return l.st.ReviseSpend(ctx, se)
	}
	return l.st.RecordSpend(ctx, se)
}

// statusIncomplete is a provisional row's status: what a process killed
// mid-stream leaves.
const statusIncomplete = "incomplete"

func spendEntry(e Entry) store.SpendEntry {
	return store.SpendEntry{
		RequestID:        e.RequestID,
		User:             e.User,
		Model:            e.Model,
		RequestedModel:   e.Model,
		Provider:         e.Provider,
		InputTokens:      e.Usage.Input,
		OutputTokens:     e.Usage.Output,
		CacheReadTokens:  e.Usage.CacheRead,
		CacheWriteTokens: e.Usage.CacheWrite,
		CostPicodollars:  int64(e.Cost),
		Status:           strconv.Itoa(e.Status),
		Time:             e.Time,
	}
}
