-- Pictures sent with a message or made by a model. The name and the bytes
-- are sealed under the owner's key like message text, bound to the owner,
-- session, message and attachment; they go with their message.
CREATE TABLE attachments (
    id         TEXT    NOT NULL PRIMARY KEY,
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    session_id TEXT    NOT NULL,
    ord        INTEGER NOT NULL, -- order within the message, from 1
    media_type TEXT    NOT NULL,
    name       BLOB    NOT NULL, -- sealed
    data       BLOB    NOT NULL, -- sealed
    bytes      INTEGER NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (message_id, ord)
) STRICT;
CREATE INDEX attachments_session ON attachments (session_id);

-- How many pictures each message has: listing a session's messages reads
-- the attachments table only when one has some.
ALTER TABLE messages ADD COLUMN attachments INTEGER NOT NULL DEFAULT 0;
