-- Which sessions their owners share read-only (privacy.communitySharing):
-- one row per session ever shared, revoked_at set while it is not. It is
-- written in the same transaction as the audit event that records the
-- grant or the revocation, and goes with the session.
CREATE TABLE shares (
    session_id TEXT    NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    owner      TEXT    NOT NULL,
    shared_at  BIGINT  NOT NULL,
    revoked_at BIGINT
);
-- Listing what is shared now is one read of this index.
CREATE INDEX shares_live ON shares (shared_at) WHERE revoked_at IS NULL;

-- Until now the audit log alone said who shares what, the latest grant or
-- revocation of a session winning: carry the sessions shared now over.
INSERT INTO shares (session_id, owner, shared_at, revoked_at)
SELECT s.id, s.owner, g.at, NULL
FROM sessions s JOIN audit_log g ON g.session_id = s.id
WHERE g.action = 'share.grant' AND g.id = (
    SELECT a.id FROM audit_log a
    WHERE a.session_id = s.id AND a.actor = s.owner AND a.subject = s.owner
      AND a.action IN ('share.grant', 'share.revoke')
    ORDER BY a.at DESC, a.id DESC LIMIT 1);
