// Package store keeps the gateway's chat sessions, the spend ledger, the
// quota charges, who shares what and the audit log, behind one interface
// (Store, every part of which each implementation has) with two
// implementations: an embedded SQLite file (the default, one replica) and
// PostgreSQL (several replicas). Open picks one from the gateway config;
// migrations embedded in the binary are applied before it returns.
// MemoryQuotas holds quota charges in memory, with the same semantics, for
// a gateway without a database.
//
// # What is encrypted
//
// Message text and session titles are sealed with AES-256-GCM under a key
// per user, derived with HKDF-SHA256 from the gateway's master key and a
// random 32-byte salt kept in the user_keys table (the owner's email goes
// into the HKDF info too). Every seal draws a random nonce. The associated
// data binds each ciphertext to its owner, session, message and field, so a
// ciphertext copied onto another user's, session's or message's row fails
// to open (ErrUndecryptable) instead of being shown to the wrong person.
//
// Everything else is plaintext, on purpose: owner emails (sessions are
// looked up by them, and the ledger and audit log exist to answer "who";
// hashing them would hide nothing from anyone who also holds the master
// key), session and message ids, model names, timestamps, roles, statuses,
// token counts, costs, and therefore each message's size (ciphertext is the
// plaintext plus 29 bytes). The ledger and the audit log never hold content.
//
// # Erasure
//
// DeleteUserData deletes the user's sessions, messages and user_keys row in
// one transaction. Without the salt the key cannot be derived again, so
// ciphertext that outlives the rows is unreadable even with the master key.
// On SQLite, secure_delete zeroes the freed pages and a WAL checkpoint
// (TRUNCATE) flushes old page images out of the WAL at once, so the live
// files keep no trace of the salt or the ciphertext. On PostgreSQL the
// deleted rows stay in the table files as dead tuples until vacuum reuses
// their space, and in WAL archives; a copy of the data directory or of the
// WAL taken around the erase may still hold both salt and ciphertext.
// Backups taken before the erase hold both too: they stay readable to
// whoever also has the master key, until they expire.
//
// # Threat model
//
// Someone with the database alone (a DBA of a shared PostgreSQL, a stolen
// volume, a pg_dump, a leaked backup) but not the master-key Secret can
// read who uses the gateway, when, how much, with which models and at what
// cost, and how long each message is; cannot read any message or title;
// and cannot move ciphertext between users, sessions or messages without
// the move being detected on read. They can delete rows, or put back an
// older version of the same row, undetected: the encryption guards
// confidentiality, not completeness.
//
// Someone with both the database and the master key (in Kubernetes: anyone
// who can read Secrets in the namespace or exec into the gateway pod, so a
// cluster admin) can decrypt everything the store holds, except users
// already erased from the live database. What keeps an admin of the
// gateway out of other people's chats is that no route serves them, not
// the cryptography.
//
// # Owner scoping
//
// Every session and message method takes the caller's email and matches it
// in the same SQL statement that finds the row: a session that exists but
// belongs to someone else is indistinguishable from one that does not exist
// (ErrNotFound, with the same message). Owners are compared exactly; the
// gateway lower-cases emails before they get here.
//
// # Time
//
// Timestamps are stored as Unix microseconds (UTC) in both dialects, so the
// SQL is shared and the two stores round-trip identical values. Usage by day
// is bucketed in Go with the caller's *time.Location, because SQLite knows
// no time zones and a day is not always 24 hours.
//
// # Durability
//
// SQLite runs in WAL mode with synchronous=NORMAL: a commit survives the
// process being killed (SIGKILL included); a power cut may lose the last
// few commits but never corrupts the file. PostgreSQL's durability is the
// server's. A streamed reply is a row from its first token (see Messages),
// so a kill mid-stream leaves it marked, not lost.
package store
