-- Personal API keys. A key is "cgw_" and 43 characters of base64url (256
-- random bits); only its SHA-256 is kept, with the first characters
-- (prefix) so that its owner can tell keys apart. The row names exactly one
-- person (owner). last_used_at is written coarsely (see the gateway).
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_keys_owner ON api_keys (owner, created_at);
