-- Quota reservations: one row per request in flight, holding its
-- worst-case cost until it settles; expires_at frees the amount of a
-- request whose process died.
CREATE TABLE quota_charges (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_email         TEXT    NOT NULL,
    amount_picodollars INTEGER NOT NULL,
    at                 INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX quota_charges_user ON quota_charges (user_email, expires_at);

-- Settled quota spend per user in 15-minute buckets (every time zone's
-- midnight falls on a quarter hour), so reading a day's spend sums at most
-- 96 rows however many requests the user made. Kept apart from the ledger:
-- enforcement must not depend on which ledger is written, or when.
CREATE TABLE quota_spend (
    user_email         TEXT    NOT NULL,
    bucket             INTEGER NOT NULL,
    amount_picodollars INTEGER NOT NULL,
    PRIMARY KEY (user_email, bucket)
) STRICT;

-- One row per quota notification: the primary key is the dedup, so only
-- the replica whose insert wins sends the message.
CREATE TABLE quota_notifications (
    user_email TEXT    NOT NULL,
    window_day TEXT    NOT NULL,
    threshold  TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (user_email, window_day, threshold)
) STRICT;
