package store

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The ledger's group commit: a batch of rows and the settlements of the
// final ones, in one transaction. On SQLite that is one transaction of
// prepared statements on the writer connection; on PostgreSQL it is one
// round trip: a pgx batch (an implicit transaction) of two statements over
// arrays, whatever the batch's size.

// spendUpsert writes a row or replaces the one with its request id,
// keeping the row's user (a different user's id is left alone) and time.
const spendUpsertSet = `ON CONFLICT (request_id) DO UPDATE SET
		client_request_id = excluded.client_request_id,
		model = excluded.model, requested_model = excluded.requested_model, provider = excluded.provider,
		input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
		cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
		images = excluded.images, cost_picodollars = excluded.cost_picodollars, status = excluded.status
		WHERE spend.user_email = excluded.user_email`

const spendColumns = `(request_id, client_request_id, user_email, model, requested_model, provider,
		 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_picodollars, status, at, images)`

// settlement is the cost a batch settles against one lease. It lands in
// the lease's bucket: a lease belongs to one quota day.
type settlement struct {
	lease, user string
	cost        int64
}

// prepareBatch checks the writes, keeps the last row per request id and
// sums the settlements per lease.
func (s *sqlStore) prepareBatch(writes []SpendWrite) ([]SpendEntry, []settlement, error) {
	rows := make([]SpendEntry, 0, len(writes))
	at := make(map[string]int, len(writes))
	var settles []settlement
	idx := map[string]int{}
	for _, w := range writes {
		e := w.Entry
		if e.RequestID == "" || e.User == "" {
			return nil, nil, fmt.Errorf("commit spend: %w: request id and user are required", ErrInvalid)
		}
		if e.InputTokens < 0 || e.OutputTokens < 0 || e.CacheReadTokens < 0 || e.CacheWriteTokens < 0 || e.Images < 0 || e.CostPicodollars < 0 {
			return nil, nil, fmt.Errorf("commit spend: %w: negative count", ErrInvalid)
		}
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		if i, ok := at[e.RequestID]; ok {
			e.Time = rows[i].Time // the row keeps its first time
			rows[i] = e
		} else {
			at[e.RequestID] = len(rows)
			rows = append(rows, e)
		}
		if w.Lease == "" || e.CostPicodollars == 0 {
			continue
		}
		if i, ok := idx[w.Lease]; ok {
			settles[i].cost += e.CostPicodollars
			continue
		}
		idx[w.Lease] = len(settles)
		settles = append(settles, settlement{lease: w.Lease, user: e.User, cost: e.CostPicodollars})
	}
	return rows, settles, nil
}

func (s *sqlStore) CommitSpend(ctx context.Context, writes []SpendWrite) error {
	if len(writes) == 0 {
		return nil
	}
	rows, settles, err := s.prepareBatch(writes)
	if err != nil {
		return err
	}
	if pg, ok := s.db.(*pgBackend); ok {
		err = pg.commitSpend(ctx, rows, settles)
	} else {
		yieldCPU() // before the BEGIN
		err = s.db.tx(ctx, true, func(q querier) error { return commitSpendTx(ctx, q, rows, settles) })
		yieldCPU() // after the COMMIT, before the caller's own work on the batch
	}
	if err != nil {
		return fmt.Errorf("commit spend: %w", err)
	}
	return nil
}

// sqliteChunk is the most rows one INSERT of a SQLite batch carries (14
// parameters a row, far within SQLite's 32,766). A batch is cut into
// chunks of 4, 2 and 1 rows, so three statements, each prepared once,
// serve every batch size. A chunk is small so that the CPU it takes in
// one go stays short (about 40 µs; see yieldCPU); a statement's own cost
// is small beside its rows', so small chunks cost little more per row.
const sqliteChunk = 4

// sqliteSpendInserts[i] inserts 1<<i rows. Its parameters are nameless
// (?): the driver looks up every $N parameter's name as it binds it, which
// cost more than the binding.
var sqliteSpendInserts = func() []string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", 14), ", ") + ")"
	var out []string
	for n := 1; n <= sqliteChunk; n *= 2 {
		out = append(out, `INSERT INTO spend `+spendColumns+` VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")+` `+spendUpsertSet)
	}
	return out
}()

// yieldCPU lets whatever waits for the CPU run before the batch goes on.
//
// A SQLite batch runs on the gateway's own CPU (SQLite is in-process, its
// statements pure Go), and with the gateway on one CPU a request whose
// bytes arrive while the batch runs waits until the batch lets go: the
// batch yields before each statement of its transaction, so that a
// request waits for one statement (a chunk of rows, a settlement, the
// BEGIN or the COMMIT), not for the whole batch.
//
// The yield is a sleep long enough to be still pending when the scheduler
// next looks at its timers. runtime.Gosched does not do: with one P it
// puts the goroutine on the global run queue, which the scheduler takes
// before it polls the network, so a request whose bytes arrived meanwhile
// still waits for the whole batch. Nor does a sleep of a microsecond: it
// has expired by the time the scheduler checks its timers, which makes the
// batch the next goroutine to run, ahead of those waiting and before any
// network poll. A pending sleep lets the scheduler run what is runnable
// and poll the network; the batch goes on once those wait (a request for
// its provider, or for its client's next bytes). It costs the batch time,
// not CPU: on an idle gateway the poller waits out its resolution, so a
// batch takes up to a millisecond longer per statement there.
func yieldCPU() { time.Sleep(20 * time.Microsecond) }

// commitSpendTx is the batch as statements in a transaction (SQLite: the
// process's own file, where a statement costs no round trip). A multi-row
// INSERT costs the driver and the statement's setup once per chunk rather
// than per row. It yields (yieldCPU) before each statement and before the
// COMMIT.
func commitSpendTx(ctx context.Context, q querier, rows []SpendEntry, settles []settlement) error {
	// The statements take ctx's values, not its end: with a context that
	// can end, the driver starts a goroutine per statement to interrupt
	// it, which costs the small statements here a good part of their CPU.
	// The transaction still ends with ctx: its BEGIN and COMMIT take it,
	// and database/sql rolls it back when ctx ends.
	ctx = context.WithoutCancel(ctx)
	args := make([]any, 0, 14*min(len(rows), sqliteChunk))
	for len(rows) > 0 {
		i := bits.Len(uint(min(len(rows), sqliteChunk))) - 1
		n := 1 << i
		args = args[:0]
		for _, e := range rows[:n] {
			args = append(args, e.RequestID, e.ClientRequestID, e.User, e.Model, e.RequestedModel, e.Provider,
				e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheWriteTokens, e.CostPicodollars, e.Status, micros(e.Time), e.Images)
		}
		yieldCPU()
		if _, err := q.exec(ctx, sqliteSpendInserts[i], args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	for _, st := range settles {
		var bucket int64
		yieldCPU()
		err := q.queryRow(ctx, `UPDATE quota_leases SET amount_picodollars = MAX(amount_picodollars - $1, 0)
			WHERE id = $2 AND user_email = $3 RETURNING bucket`, st.cost, st.lease, st.user).Scan(&bucket)
		if isNoRows(err) {
			continue // gone: charged in full when it expired
		}
		if err != nil {
			return err
		}
		yieldCPU()
		if _, err := q.exec(ctx, `INSERT INTO quota_spend (user_email, bucket, amount_picodollars) VALUES ($1, $2, $3)
			ON CONFLICT (user_email, bucket) DO UPDATE SET amount_picodollars = quota_spend.amount_picodollars + excluded.amount_picodollars`,
			st.user, bucket, st.cost); err != nil {
			return err
		}
	}
	yieldCPU() // before the COMMIT, which writes the batch's pages to the WAL
	return nil
}

// commitSpend sends the batch in one round trip. The settlement is one
// statement: the leases still live give up the cost (locked first, as
// GrantLease's charging of expired leases locks them), and only their
// costs are added to settled spend.
func (b *pgBackend) commitSpend(ctx context.Context, rows []SpendEntry, settles []settlement) error {
	n := len(rows)
	var (
		ids, clients, users, models, requested, providers, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		in, out, cr, cw, cost, at, images                           = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, e := range rows {
		ids[i], clients[i], users[i], models[i], requested[i], providers[i], statuses[i] = e.RequestID, e.ClientRequestID, e.User, e.Model, e.RequestedModel, e.Provider, e.Status
		in[i], out[i], cr[i], cw[i], cost[i], at[i], images[i] = e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheWriteTokens, e.CostPicodollars, micros(e.Time), e.Images
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO spend `+spendColumns+`
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[]) `+spendUpsertSet,
		ids, clients, users, models, requested, providers, in, out, cr, cw, cost, statuses, at, images)
	if len(settles) > 0 {
		m := len(settles)
		leases, su, costs := make([]string, m), make([]string, m), make([]int64, m)
		for i, st := range settles {
			leases[i], su[i], costs[i] = st.lease, st.user, st.cost
		}
		batch.Queue(`WITH t AS (
				SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(lease, user_email, cost)),
			l AS (
				UPDATE quota_leases q SET amount_picodollars = GREATEST(q.amount_picodollars - t.cost, 0)
				FROM t WHERE q.id = t.lease AND q.user_email = t.user_email
				RETURNING q.user_email, q.bucket, t.cost)
			INSERT INTO quota_spend (user_email, bucket, amount_picodollars)
			SELECT user_email, bucket, CAST(SUM(cost) AS BIGINT) FROM l GROUP BY user_email, bucket
			ON CONFLICT (user_email, bucket) DO UPDATE SET amount_picodollars = quota_spend.amount_picodollars + excluded.amount_picodollars`,
			leases, su, costs)
	}
	return b.pool.SendBatch(ctx, batch).Close()
}
