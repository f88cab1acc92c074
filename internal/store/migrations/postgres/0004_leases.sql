-- Quota leases: a replica holds a slice of a person's daily budget and
-- admits requests against it in memory. The amount is what the lease still
-- holds: the ledger writer moves each settled cost from it into
-- quota_spend in the transaction that writes the ledger row. A lease whose
-- holder never returned it is charged in full when it expires: its money
-- may have been spent by requests whose rows died with the process.
CREATE TABLE quota_leases (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_email         TEXT    NOT NULL,
    holder             TEXT    NOT NULL,
    bucket             BIGINT  NOT NULL, -- where an expired lease is charged
    amount_picodollars BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL
);
CREATE INDEX quota_leases_user ON quota_leases (user_email, expires_at);

-- The ledger is keyed by an id the gateway generates; the caller's
-- X-Request-Id is kept beside it, for correlation only.
ALTER TABLE spend ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '';
