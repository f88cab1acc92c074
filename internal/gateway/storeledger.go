package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// ErrNoMasterKey: the config names no master key, so there is no store
// (the operator always configures one; a bare proxy may run without).
var ErrNoMasterKey = errors.New("keys.masterKeyFile is not set: the session store encrypts with the master key")

// OpenStore opens the store the config at configPath names
// (sessions.store, with the master key from keys.masterKeyFile) and marks
// incomplete the replies a dead process left streaming. The caller closes it.
func OpenStore(ctx context.Context, configPath string, now time.Time) (store.Store, error) {
	cfg, err := gatewayconfig.Load(configPath)
	if err != nil {
		return nil, err
	}
	if cfg.Keys.MasterKeyFile == "" {
		return nil, ErrNoMasterKey
	}
	key, err := store.ReadMasterKey(cfg.Keys.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("keys.masterKeyFile: %w", err)
	}
	st, err := store.Open(ctx, cfg.Sessions.Store, key)
	if err != nil {
		return nil, fmt.Errorf("sessions.store: %w", err)
	}
	if _, err := st.RecoverIncomplete(ctx, recoverCutoff(cfg, now)); err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}

// recoverCutoff is the last-save time before which a streaming reply is
// taken for dead. One replica (SQLite) owns every stream, so at start-up
// all of them are dead. Replicas sharing PostgreSQL must leave each
// other's live streams alone: no model request outlives
// failover.requestTimeout, so a reply not saved for longer than that, plus
// a minute of slack, has no writer.
func recoverCutoff(cfg *gatewayconfig.Config, now time.Time) time.Time {
	if cfg.Sessions.Store.Type != gatewayconfig.StorePostgres {
		return now
	}
	return now.Add(-cfg.Failover.RequestTimeout.Duration - time.Minute)
}

// storeLedger writes each request's spend to the store's ledger.
//
// A stateful chat turn is billed while it streams (see turnBilling): its
// row is written when the stream starts and revised as output arrives. The
// final Record of such a turn replaces the provisional row; every other
// Record is insert-once, so a caller repeating an X-Request-Id can neither
// bill twice nor overwrite an earlier bill.
type storeLedger struct {
	st store.Store
	// provisional holds the request ids of turns billed while streaming.
	provisional sync.Map
}

func newStoreLedger(st store.Store) *storeLedger { return &storeLedger{st: st} }

func (l *storeLedger) Record(ctx context.Context, e Entry) error {
	se := spendEntry(e)
	if _, ok := l.provisional.LoadAndDelete(e.RequestID); ok {
		return l.st.ReviseSpend(ctx, se)
	}
	return l.st.RecordSpend(ctx, se)
}

// revise writes a provisional row for a turn still streaming.
func (l *storeLedger) revise(ctx context.Context, e Entry, status string) error {
	l.provisional.Store(e.RequestID, struct{}{})
	se := spendEntry(e)
	se.Status = status
	return l.st.ReviseSpend(ctx, se)
}

// forget drops a turn's provisional mark when no final Record came.
func (l *storeLedger) forget(id string) { l.provisional.Delete(id) }

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
