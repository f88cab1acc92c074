package store

import (
	"context"
	"errors"
	"time"
)

// Errors. Callers test with errors.Is; returned errors wrap these with detail.
var (
	// ErrNotFound: no such session or message for this owner. It is also
	// what a lookup of another user's row returns, so existence never leaks.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row exists in a state the call cannot apply to (a
	// finished message, an imported id already present).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the arguments are malformed (empty owner, unknown role …).
	ErrInvalid = errors.New("invalid argument")
	// ErrUndecryptable: a stored ciphertext did not authenticate. Either the
	// master key changed, the user's key was erased, or the row was altered
	// or moved in the database.
	ErrUndecryptable = errors.New("stored ciphertext cannot be decrypted")
)

// Store is the whole storage API of the gateway.
type Store interface {
	Sessions
	Messages
	Ledger
	Quotas
	AuditLog
	Shares
	APIKeys
	Archive
	// Close releases the database. It is safe to call more than once.
	Close() error
}

// Sessions are per-owner conversations.
type Sessions interface {
	CreateSession(ctx context.Context, owner string, s NewSession) (Session, error)
	GetSession(ctx context.Context, owner, id string) (Session, error)
	// ListSessions returns the owner's sessions, most recently active first.
	// Pass the returned cursor back in Page.Cursor for the next page; it is
	// empty after the last page.
	ListSessions(ctx context.Context, owner string, p Page) (sessions []Session, next string, err error)
	RenameSession(ctx context.Context, owner, id, title string) error
	// DeleteSession deletes the session and its messages.
	DeleteSession(ctx context.Context, owner, id string) error
	// TouchSession records activity now without adding a message.
	TouchSession(ctx context.Context, owner, id string) error
	// ActiveSession returns the owner's most recently active session if it
	// saw activity within idle before now, else ErrNotFound: the caller then
	// starts a fresh session, which is how a conversation ends after the
	// idle timeout.
	ActiveSession(ctx context.Context, owner string, idle time.Duration, now time.Time) (Session, error)
}

// Messages are the turns of a session. Appending one counts as activity.
//
// A streamed reply is written in three steps so that a process killed
// mid-stream leaves an honest row: BeginAssistantMessage inserts it as
// StatusStreaming, UpdateAssistantMessage (optional, coarse: say every few
// seconds) saves the text so far, FinishAssistantMessage stores the final
// text, tokens and status. At start-up RecoverIncomplete turns rows left
// streaming by a dead process into StatusIncomplete, keeping their last
// saved text.
type Messages interface {
	// AppendMessage adds a finished message (status complete, incomplete or
	// error; complete when empty).
	AppendMessage(ctx context.Context, owner, sessionID string, m NewMessage) (Message, error)
	// ListMessages returns the session's messages in order.
	ListMessages(ctx context.Context, owner, sessionID string) ([]Message, error)
	BeginAssistantMessage(ctx context.Context, owner, sessionID string) (Message, error)
	// UpdateAssistantMessage replaces the text of a streaming message; it
	// returns ErrConflict once the message is no longer streaming.
	UpdateAssistantMessage(ctx context.Context, owner, sessionID, messageID, partial string) error
	// FinishAssistantMessage completes a streaming message. A message that
	// recovery already marked incomplete may still be finished (its writer
	// was alive after all); a finished one returns ErrConflict.
	FinishAssistantMessage(ctx context.Context, owner, sessionID, messageID string, f Finish) error
	// ReplaceUserMessage runs a turn again (regenerate, edit and resend,
	// retry): the user message messageID gets content as its text and
	// every later message of the session goes, in one transaction. The
	// message keeps its id and its pictures. ErrNotFound when owner's
	// session has no such message; ErrInvalid when it is not a user message.
	ReplaceUserMessage(ctx context.Context, owner, sessionID, messageID, content string) (Message, error)
	// AddAttachment stores a picture with a reply still streaming (one a
	// model made); ErrConflict once the reply is finished.
	AddAttachment(ctx context.Context, owner, sessionID, messageID string, a NewAttachment) (Attachment, error)
	// ReadAttachment returns a picture of owner's session, with its bytes.
	ReadAttachment(ctx context.Context, owner, sessionID, attachmentID string) (Attachment, error)
	// RecoverIncomplete marks incomplete every streaming message last saved
	// before staleBefore, and returns how many. A single replica calls it at
	// start-up with time.Now(); with several replicas sharing PostgreSQL,
	// pass a time older than any live stream's last save (the other
	// replicas' streams are not dead) and call it periodically.
	RecoverIncomplete(ctx context.Context, staleBefore time.Time) (int64, error)
}

// Ledger is the spend ledger: one row per request, no content. It outlives
// sessions: retention and DeleteUserData leave it alone.
type Ledger interface {
	// RecordSpend stores e. A second entry with the same RequestID is
	// ignored, so a retried write cannot bill twice.
	RecordSpend(ctx context.Context, e SpendEntry) error
	// UsageByDay sums user's entries in [from, to) per calendar day in loc
	// and model, ordered by day then model.
	UsageByDay(ctx context.Context, user string, from, to time.Time, loc *time.Location) ([]DayUsage, error)
	// UsageByUser sums every user's entries in [from, to), ordered by user.
	UsageByUser(ctx context.Context, from, to time.Time) ([]UserUsage, error)
	// SpendSince is user's total cost in picodollars at or after since.
	SpendSince(ctx context.Context, user string, since time.Time) (int64, error)
	// ReviseSpend stores e, replacing the tokens, cost, model, provider and
	// status of an earlier entry with the same RequestID (it inserts when
	// there is none). The row keeps its user and time. It lets the gateway
	// bill a streamed reply from its first token and revise the row as
	// output arrives, so a process killed mid-stream leaves the request
	// billed for what was streamed. Only the gateway's own request ids may
	// be revised: a caller-chosen id could otherwise overwrite someone's bill.
	ReviseSpend(ctx context.Context, e SpendEntry) error
}

// AuditLog records every use of a privacy opt-in (an admin reading or
// exporting someone's sessions), so the subject can see it happened.
type AuditLog interface {
	RecordAudit(ctx context.Context, e AuditEvent) error
	// AuditFor returns the newest limit events about subject, newest first
	// (limit <= 0 means 100).
	AuditFor(ctx context.Context, subject string, limit int) ([]AuditEvent, error)
}

// Shares are the sessions their owners share read-only with every user of
// the gateway (privacy.communitySharing). Each change is written in the
// same transaction as the audit event that records it.
type Shares interface {
	// SetShared starts (shared) or stops sharing owner's session id as of
	// e.Time and records e. It is ErrNotFound when owner has no such
	// session; then nothing is recorded.
	SetShared(ctx context.Context, owner, id string, shared bool, e AuditEvent) error
	// SharedSessions lists the sessions shared now, most recently shared
	// first.
	SharedSessions(ctx context.Context) ([]SharedSession, error)
	// SharedSession is owner's session id if it is shared now, else
	// ErrNotFound.
	SharedSession(ctx context.Context, owner, id string) (SharedSession, error)
}

// Archive moves a user's data in and out as a whole.
type Archive interface {
	// Export calls fn with each of owner's sessions, oldest first, with its
	// messages decrypted, from one consistent snapshot. An error from fn
	// stops the export and is returned.
	Export(ctx context.Context, owner string, fn func(ExportedSession) error) error
	// Import stores one exported session for owner, keeping its id, times
	// (a time later than now becomes now), title and messages (numbered in
	// slice order). A session id already in the store is ErrConflict. A
	// message still streaming becomes incomplete.
	Import(ctx context.Context, owner string, s ExportedSession) error
	// StoredBytes is what owner's conversations take in the store: the
	// sealed titles and message texts, in bytes (each SealOverhead more
	// than its plaintext).
	StoredBytes(ctx context.Context, owner string) (int64, error)
	// DeleteUserData erases owner's sessions, messages, key material and
	// personal API keys. Ledger and audit rows (no content) stay.
	DeleteUserData(ctx context.Context, owner string) error
	// DeleteSessionsOlderThan deletes sessions last active before t, with
	// their messages, and returns how many.
	DeleteSessionsOlderThan(ctx context.Context, t time.Time) (int64, error)
}

// SharedSession is a session and when its owner shared it.
type SharedSession struct {
	Session
	SharedAt time.Time `json:"sharedAt"`
}

// NewSession is what CreateSession needs.
type NewSession struct {
	Model string
	Title string
}

// Session is one conversation.
type Session struct {
	ID             string    `json:"id"`
	Owner          string    `json:"owner"`
	Model          string    `json:"model"`
	Title          string    `json:"title"`
	CreatedAt      time.Time `json:"createdAt"`
	LastActivityAt time.Time `json:"lastActivityAt"`
}

// Expired reports whether the session has been idle for at least idle at now.
func (s Session) Expired(idle time.Duration, now time.Time) bool {
	return !now.Before(s.LastActivityAt.Add(idle))
}

// Page selects a page of ListSessions.
type Page struct {
	// Limit is the page size: 50 when <= 0, at most 500.
	Limit int
	// Cursor is the next value of the previous page, empty for the first.
	Cursor string
}

// Role of a message's author.
type Role string

// Roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Status of a message.
type Status string

// Statuses.
const (
	// StatusStreaming: an assistant reply being written right now.
	StatusStreaming Status = "streaming"
	StatusComplete  Status = "complete"
	// StatusIncomplete: cut short (client gone, upstream cut, process died).
	StatusIncomplete Status = "incomplete"
	StatusError      Status = "error"
)

// NewMessage is what AppendMessage needs.
type NewMessage struct {
	Role         Role
	Content      string
	InputTokens  int64
	OutputTokens int64
	Status       Status
	// Attachments are stored with the message, in the same transaction.
	Attachments []NewAttachment
}

// NewAttachment is a picture to store with a message.
type NewAttachment struct {
	MediaType     string
	Name          string
	Width, Height int
	Data          []byte
}

// Attachment is a picture of a message. Its name and bytes are sealed like
// the message's text; Data is read only by ReadAttachment and Export.
type Attachment struct {
	ID        string `json:"id"`
	MediaType string `json:"mediaType"`
	Name      string `json:"name"`
	// Bytes is the length of Data.
	Bytes  int64  `json:"bytes"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Data   []byte `json:"data,omitempty"`
}

// Finish is the outcome of a streamed reply.
type Finish struct {
	Content      string
	InputTokens  int64
	OutputTokens int64
	// Status is complete, incomplete or error.
	Status Status
}

// Message is one turn.
type Message struct {
	ID        string `json:"id"`
	SessionID string `json:"sessionId"`
	// Seq orders the messages of a session, from 1.
	Seq          int64     `json:"seq"`
	Role         Role      `json:"role"`
	Content      string    `json:"content"`
	InputTokens  int64     `json:"inputTokens"`
	OutputTokens int64     `json:"outputTokens"`
	Status       Status    `json:"status"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Attachments are the message's pictures, in order.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// ExportedSession is a session with all its messages.
type ExportedSession struct {
	Session
	Messages []Message `json:"messages"`
}

// SpendEntry is one billed request. It has no field for content.
type SpendEntry struct {
	// RequestID is the gateway's own id for the request: the row's key.
	RequestID string
	// ClientRequestID is the caller's X-Request-Id, kept for correlation
	// only: callers choose it, so it is never a key.
	ClientRequestID string
	User            string
	// Model is the alias that served; RequestedModel the one asked for
	// ("auto", or the alias before a fallback).
	Model            string
	RequestedModel   string
	Provider         string
	InputTokens      int64
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	// Images counts the pictures an image model made (0 for chat).
	Images int64
	// CostPicodollars is the exact cost in 1e-12 USD.
	CostPicodollars int64
	// Status is the request's outcome as the gateway names it ("200",
	// "incomplete", "upstream_error" …).
	Status string
	// Time defaults to now.
	Time time.Time
}

// Tokens counts tokens by how they are priced.
type Tokens struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	CacheRead  int64 `json:"cacheRead"`
	CacheWrite int64 `json:"cacheWrite"`
}

// DayUsage is one user's usage of one model on one local day.
type DayUsage struct {
	// Day is the calendar date in the requested location, "2006-01-02".
	Day             string `json:"day"`
	Model           string `json:"model"`
	Requests        int64  `json:"requests"`
	Tokens          Tokens `json:"tokens"`
	Images          int64  `json:"images"`
	CostPicodollars int64  `json:"costPicodollars"`
}

// UserUsage is one user's usage over a period.
type UserUsage struct {
	User            string `json:"user"`
	Requests        int64  `json:"requests"`
	Tokens          Tokens `json:"tokens"`
	Images          int64  `json:"images"`
	CostPicodollars int64  `json:"costPicodollars"`
}

// AuditEvent says who did what to whose data, and when. Never content.
type AuditEvent struct {
	Time time.Time `json:"time"`
	// Actor is the email of whoever acted.
	Actor string `json:"actor"`
	// Action names the privileged route used, e.g. "session.read", "export".
	Action string `json:"action"`
	// Subject is the email of the user whose data was touched.
	Subject string `json:"subject"`
	// SessionID is the session concerned, if any.
	SessionID string `json:"sessionId,omitempty"`
}
