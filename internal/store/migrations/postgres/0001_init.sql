-- One row per user who ever had a session: the salt that, with the master
-- key, derives the user's encryption key. Deleting the row shreds the key
-- and (by cascade) everything sealed with it.
CREATE TABLE user_keys (
    owner      TEXT   NOT NULL PRIMARY KEY,
    salt       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id               TEXT   NOT NULL PRIMARY KEY,
    owner            TEXT   NOT NULL REFERENCES user_keys (owner) ON DELETE CASCADE,
    model            TEXT   NOT NULL,
    title            BYTEA  NOT NULL, -- sealed
    created_at       BIGINT NOT NULL, -- Unix microseconds, as every time here
    last_activity_at BIGINT NOT NULL,
    last_seq         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_owner_activity ON sessions (owner, last_activity_at, id);
CREATE INDEX sessions_activity ON sessions (last_activity_at);

CREATE TABLE messages (
    id            TEXT   NOT NULL PRIMARY KEY,
    session_id    TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    role          TEXT   NOT NULL CHECK (role IN ('user', 'assistant')),
    content       BYTEA  NOT NULL, -- sealed
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('streaming', 'complete', 'incomplete', 'error')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (session_id, seq)
);
CREATE INDEX messages_streaming ON messages (updated_at) WHERE status = 'streaming';

-- The spend ledger: no content, and it outlives sessions.
CREATE TABLE spend (
    request_id         TEXT   NOT NULL PRIMARY KEY,
    user_email         TEXT   NOT NULL,
    model              TEXT   NOT NULL,
    requested_model    TEXT   NOT NULL,
    provider           TEXT   NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_picodollars   BIGINT NOT NULL,
    status             TEXT   NOT NULL,
    at                 BIGINT NOT NULL
);
CREATE INDEX spend_user_at ON spend (user_email, at);
CREATE INDEX spend_at ON spend (at);

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    session_id TEXT   NOT NULL
);
CREATE INDEX audit_subject ON audit_log (subject, at, id);
