package metering

import (
	"context"
	"strconv"
	"sync"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// StoreLedger writes each request's spend to the store's ledger.
//
// A stateful chat turn is billed while it streams: its row is written when
// the stream starts and revised as output arrives (Revise). The final
// Record of such a turn replaces the provisional row; every other Record is
// insert-once, so a caller repeating an X-Request-Id can neither bill twice
// nor overwrite an earlier bill.
type StoreLedger struct {
	st store.Ledger
	// provisional holds the request ids of turns billed while streaming.
	provisional sync.Map
}

// NewStoreLedger writes to st.
func NewStoreLedger(st store.Ledger) *StoreLedger { return &StoreLedger{st: st} }

// Record implements Ledger.
func (l *StoreLedger) Record(ctx context.Context, e Entry) error {
	se := spendEntry(e)
	if _, ok := l.provisional.LoadAndDelete(e.RequestID); ok {
		return l.st.ReviseSpend(ctx, se)
	}
	return l.st.RecordSpend(ctx, se)
}

// Revise writes a provisional row for a turn still streaming.
func (l *StoreLedger) Revise(ctx context.Context, e Entry, status string) error {
	l.provisional.Store(e.RequestID, struct{}{})
	se := spendEntry(e)
	se.Status = status
	return l.st.ReviseSpend(ctx, se)
}

// Forget drops a turn's provisional mark when no final Record came.
func (l *StoreLedger) Forget(id string) { l.provisional.Delete(id) }

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
