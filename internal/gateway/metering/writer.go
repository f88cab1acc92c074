package metering

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Writer is the group-committed ledger. Record puts an entry on a bounded
// queue and returns; one goroutine commits the queue a batch per
// transaction: it starts a batch with the first entry waiting, takes
// whatever else is queued up to MaxBatch, waits at most Linger for more
// while the batch is short, and commits it. Under load a batch is
// whatever queued while the last one committed, so the store sees a
// transaction per batch rather than per request, and no request waits on
// one; at low rates the linger gathers tens of requests per transaction,
// where each would otherwise pay a whole commit.
//
// A batch commits the final rows' quota settlements in its transaction
// (see store.SpendWrite), so the ledger and the quota agree. Flush commits
// everything queued before it without waiting out the linger: readers of
// spend call it first, so a usage page read after a reply shows it. Close
// (on SIGTERM) commits everything queued. What a SIGKILL loses is what
// was queued or being committed: the requests that ended in the last
// Linger plus one commit, or more while the store lags (at most
// QueueSize); their money is still held by the quota lease, which is
// charged in full when it expires, so the quota never counts less.
type Writer struct {
	sink     Sink
	onCommit func([]Entry, error)
	log      *slog.Logger
	maxBatch int
	linger   time.Duration

	queue chan Entry
	// full is signalled (never blocking) by a Record that finds maxBatch
	// entries queued, to end a linger early.
	full    chan struct{}
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Sink is where a Writer commits: the store's ledger and quota in one
// transaction, or memory.
type Sink interface {
	Commit(ctx context.Context, batch []Entry) error
}

// WriterOptions tune a Writer; zero values take the defaults.
type WriterOptions struct {
	// OnCommit is told about every batch once it is committed (err nil),
	// and about entries given up on (err set): the quota keeper moves the
	// costs out of its leases' pending amounts.
	OnCommit func(batch []Entry, err error)
	Log      *slog.Logger
	// QueueSize bounds the queue (default 8192 entries).
	QueueSize int
	// MaxBatch bounds a batch (default 512 entries).
	MaxBatch int
	// Linger is how long a short batch waits for more (default 50ms).
	Linger time.Duration
}

// DefaultLinger is how long a short batch waits for more rows. A commit
// costs the store far more than a row (SQLite writes its pages to the WAL,
// PostgreSQL makes a round trip and flushes its WAL), so at a few hundred
// requests a second a batch of a request or two cost more than the
// requests' own work; 50 ms gathers tens. Readers do not wait for it
// (Flush), and a SIGKILL loses at most this much more of the ledger.
const DefaultLinger = 50 * time.Millisecond

// A batch that fails to commit is retried with backoff, up to
// commitAttempts times (about 30 s in all), then given up and logged:
// the leases those costs sit in are left to expire and be charged in full.
const (
	commitAttempts = 8
	commitTimeout  = 10 * time.Second
	// recordWait bounds how long Record waits for room in a full queue.
	recordWait = 5 * time.Second
)

// ErrQueueFull: the store has fallen so far behind that the entry could
// not be queued.
var ErrQueueFull = errors.New("the spend ledger's queue is full")

// NewWriter starts a Writer committing to sink.
func NewWriter(sink Sink, o WriterOptions) *Writer {
	w := &Writer{
		sink: sink, onCommit: o.OnCommit, log: o.Log,
		maxBatch: o.MaxBatch, linger: o.Linger,
		full: make(chan struct{}, 1), flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.maxBatch <= 0 {
		w.maxBatch = 512
	}
	if w.linger <= 0 {
		w.linger = DefaultLinger
	}
	size := o.QueueSize
	if size <= 0 {
		size = 8192
	}
	w.queue = make(chan Entry, size)
	go w.run()
	return w
}

// Record implements Ledger: it queues e. It waits for room only when the
// queue is full, and gives up after a bound.
func (w *Writer) Record(ctx context.Context, e Entry) error {
	select {
	case w.queue <- e:
		if len(w.queue) >= w.maxBatch {
			select {
			case w.full <- struct{}{}:
			default:
			}
		}
		return nil
	default:
	}
	t := time.NewTimer(recordWait)
	defer t.Stop()
	select {
	case w.queue <- e:
		return nil
	case <-t.C:
	case <-w.stop:
	}
	if w.onCommit != nil {
		w.onCommit([]Entry{e}, ErrQueueFull)
	}
	return ErrQueueFull
}

// Flush returns once every entry queued before it was called has been
// committed (or given up on), or ctx ends. It cuts a lingering batch
// short, and commits only what was queued when it came, so a steady
// stream of new entries does not hold it up.
func (w *Writer) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case w.flushes <- ack:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what is queued and stops the Writer; Record must not be
// called after. It is safe to call more than once.
func (w *Writer) Close(ctx context.Context) error {
	err := w.Flush(ctx)
	w.once.Do(func() { close(w.stop) })
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Entry, 0, w.maxBatch)
	for {
		var acks []chan struct{}
		select {
		case e := <-w.queue:
			batch, acks = w.fill(append(batch[:0], e))
			w.commit(batch)
		case ack := <-w.flushes:
			acks = []chan struct{}{ack}
		case <-w.stop:
			w.drain(batch[:0], -1)
			return
		}
		if acks != nil {
			w.flush(batch[:0], acks)
		}
	}
}

// fill adds what is queued to batch, waiting up to linger while it is
// short of maxBatch. A Flush (or Close) ends the wait: the batch is
// committed at once, and the flushes are returned to be answered.
//
// While it lingers the writer waits on its timer, not on the queue: a
// request's Record puts its entry in the queue's buffer without waking
// the writer (a goroutine switch per request otherwise), and the entries
// are taken when the linger ends; a Record that finds maxBatch entries
// waiting says so on full, which cuts the linger short.
func (w *Writer) fill(batch []Entry) ([]Entry, []chan struct{}) {
	var timer *time.Timer
	for {
		batch = w.take(batch)
		if len(batch) >= w.maxBatch {
			return batch, nil
		}
		if timer == nil {
			timer = time.NewTimer(w.linger)
			defer timer.Stop()
		}
		select {
		case <-w.full:
		case ack := <-w.flushes:
			return batch, []chan struct{}{ack}
		case <-w.stop:
			return batch, nil
		case <-timer.C:
			return w.take(batch), nil
		}
	}
}

// take adds what is queued to batch, up to maxBatch entries.
func (w *Writer) take(batch []Entry) []Entry {
	for len(batch) < w.maxBatch {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// flush answers acks once what was queued when they came is committed.
// It commits only that many entries: the queue is first in, first out,
// so those include every entry recorded before the Flush calls, and
// requests arriving meanwhile cannot keep a reader waiting. Flushes
// waiting now are answered by the same commit.
func (w *Writer) flush(batch []Entry, acks []chan struct{}) {
	for more := true; more; {
		select {
		case ack := <-w.flushes:
			acks = append(acks, ack)
		default:
			more = false
		}
	}
	w.drain(batch, len(w.queue))
	for _, ack := range acks {
		close(ack)
	}
}

// drain commits n entries from the queue (n < 0: until it is empty), a
// batch of at most maxBatch at a time.
func (w *Writer) drain(batch []Entry, n int) {
	for n != 0 {
		batch = batch[:0]
	take:
		for len(batch) < w.maxBatch && n != 0 {
			select {
			case e := <-w.queue:
				batch = append(batch, e)
				n--
			default:
				break take
			}
		}
		if len(batch) == 0 {
			return
		}
		w.commit(batch)
	}
}

func (w *Writer) commit(batch []Entry) {
	wait := 50 * time.Millisecond
	var err error
	for i := range commitAttempts {
		if i > 0 {
			time.Sleep(wait)
			wait = min(2*wait, 10*time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err = w.sink.Commit(ctx, batch)
		cancel()
		if err == nil {
			break
		}
		w.log.LogAttrs(context.Background(), slog.LevelError, "Failed to commit spend", slog.Int("entries", len(batch)), slog.Int("attempt", i+1), slog.String("error", err.Error()))
	}
	if w.onCommit != nil {
		w.onCommit(batch, err)
	}
}

// StoreSink commits to a store: the ledger rows and the quota settlements
// in one transaction.
type StoreSink struct{ Store store.Quotas }

// Commit implements Sink.
func (s StoreSink) Commit(ctx context.Context, batch []Entry) error {
	writes := make([]store.SpendWrite, len(batch))
	for i, e := range batch {
		writes[i] = spendWrite(e)
	}
	return s.Store.CommitSpend(ctx, writes)
}

// MemorySink settles the quota in Quotas, for a gateway without a store,
// and keeps the rows in Ledger when one is given (tests read it; a
// gateway's spend is then in its metrics and logs only).
type MemorySink struct {
	Ledger *MemoryLedger
	Quotas store.Quotas
}

// Commit implements Sink.
func (s MemorySink) Commit(ctx context.Context, batch []Entry) error {
	writes := make([]store.SpendWrite, 0, len(batch))
	for _, e := range batch {
		if s.Ledger != nil {
			_ = s.Ledger.Record(ctx, e)
		}
		if e.Lease != "" {
			writes = append(writes, spendWrite(e))
		}
	}
	if len(writes) == 0 || s.Quotas == nil {
		return nil
	}
	return s.Quotas.CommitSpend(ctx, writes)
}

func spendWrite(e Entry) store.SpendWrite {
	se := store.SpendEntry{
		RequestID:        e.RequestID,
		ClientRequestID:  e.ClientRequestID,
		User:             e.User,
		Model:            e.Model,
		RequestedModel:   e.Requested,
		Provider:         e.Provider,
		InputTokens:      e.Usage.Input,
		OutputTokens:     e.Usage.Output,
		CacheReadTokens:  e.Usage.CacheRead,
		CacheWriteTokens: e.Usage.CacheWrite,
		Images:           e.Images,
		CostPicodollars:  int64(e.Cost),
		Status:           statusString(e),
		Time:             e.Time,
	}
	if se.RequestedModel == "" {
		se.RequestedModel = e.Model
	}
	return store.SpendWrite{Entry: se, Lease: e.Lease}
}
