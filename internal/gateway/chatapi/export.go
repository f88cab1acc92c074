package chatapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func (a *API) exportRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/me/export", a.authed(a.serveMyExport))
	m.HandleFunc("POST /api/me/import", a.authed(a.serveMyImport))
	m.HandleFunc("DELETE /api/me/data", a.authed(a.serveDeleteMyData))
}

// exportDoc is the head of the JSON export: every session with its
// messages follows in "sessions".
type exportDoc struct {
	Owner      string    `json:"owner"`
	ExportedAt time.Time `json:"exportedAt"`
}

func (a *API) serveMyExport(w http.ResponseWriter, r *http.Request, c *Call) {
	a.writeExport(w, r, c, c.Caller.Email)
}

// writeExport answers owner's sessions: one JSON document, or with
// ?format=jsonl one session per line. Either is streamed from one snapshot,
// so that memory stays bounded by the largest session whatever the
// archive's size.
func (a *API) writeExport(w http.ResponseWriter, r *http.Request, c *Call, owner string) {
	switch r.URL.Query().Get("format") {
	case "", "json":
		a.writeExportJSON(w, r, c, owner)
	case "jsonl":
		a.writeExportJSONL(w, r, c, owner)
	default:
		writeAPIError(w, http.StatusBadRequest, "format must be json or jsonl")
	}
}

// writeExportJSON writes {"owner", "exportedAt", "sessions": [...]}, one
// session at a time.
func (a *API) writeExportJSON(w http.ResponseWriter, r *http.Request, c *Call, owner string) {
	head, err := json.Marshal(exportDoc{Owner: owner, ExportedAt: a.now().UTC()})
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", `attachment; filename="chat-export.json"`)
	n := 0
	a.streamExport(w, r, c, owner, func(bw *bufio.Writer, enc *json.Encoder, s *store.ExportedSession) error {
		switch {
		case s == nil && n == 0: // the end, with no session
			_, _ = bw.Write(head[:len(head)-1])
			_, err := bw.WriteString(`,"sessions":[]}` + "\n")
			return err
		case s == nil:
			_, err := bw.WriteString("]}\n")
			return err
		case n == 0:
			_, _ = bw.Write(head[:len(head)-1])
			_, _ = bw.WriteString(`,"sessions":[`)
		default:
			_ = bw.WriteByte(',')
		}
		n++
		return enc.Encode(s)
	})
}

func (a *API) writeExportJSONL(w http.ResponseWriter, r *http.Request, c *Call, owner string) {
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", `attachment; filename="chat-export.jsonl"`)
	a.streamExport(w, r, c, owner, func(_ *bufio.Writer, enc *json.Encoder, s *store.ExportedSession) error {
		if s == nil {
			return nil
		}
		return enc.Encode(s)
	})
}

// streamExport calls write with each of owner's sessions and then with nil,
// through a buffer flushed to the client every 16 kB. The status goes out
// with the first bytes, so a store failure before them is an ordinary
// error; after them the response is cut, so that the client sees it fail
// rather than take a short export for a whole one.
func (a *API) streamExport(w http.ResponseWriter, r *http.Request, c *Call, owner string, write func(*bufio.Writer, *json.Encoder, *store.ExportedSession) error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	rc := http.NewResponseController(w)
	wrote := false
	flush := func(force bool) error {
		if !force && bw.Buffered() <= 16<<10 {
			return nil
		}
		if !wrote {
			w.WriteHeader(http.StatusOK)
			wrote = true
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		_ = rc.Flush()
		return nil
	}
	err := a.store.Export(r.Context(), owner, func(s store.ExportedSession) error {
		if err := write(bw, enc, &s); err != nil {
			return err
		}
		return flush(false)
	})
	if err == nil {
		if err = write(bw, enc, nil); err == nil {
			err = flush(true)
		}
	}
	if err != nil && !wrote {
		a.storeError(w, r, c, err)
		return
	}
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelError, "Export failed mid-stream", slog.String("request_id", c.ID), slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
}

// maxImportLine bounds one session of an import.
const maxImportLine = 64 << 20

type importResult struct {
	Imported int `json:"imported"`
}

// serveMyImport reads JSONL (one exported session per line, as
// /api/me/export?format=jsonl writes) into the caller's sessions, keeping
// ids and times (none later than now). A session already present stops the
// import with 409 and says how many went in before it. The body may hold at
// most import.maxBodyBytes, and what the caller stores may not pass
// import.maxStoredBytesPerUser: either stops the import with 413, the
// sessions before it kept.
func (a *API) serveMyImport(w http.ResponseWriter, r *http.Request, c *Call) {
	lim := c.Config.Import
	n, line := 0, 0
	stop := func(status int, typ, msg string) {
		writeJSON(w, status, struct {
			apiErrorBody
			importResult
		}{apiErrorBody{apiErrorDetail{typ, msg}}, importResult{n}})
	}
	stored, err := a.store.StoredBytes(r.Context(), c.Caller.Email)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	body := &errorReader{r: http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes)}
	tooBig := func() bool {
		mbe := (*http.MaxBytesError)(nil)
		if !errors.As(body.err, &mbe) {
			return false
		}
		stop(http.StatusRequestEntityTooLarge, apiTooLarge, fmt.Sprintf(
			"the import is larger than %s, this gateway's limit for one import; %d session(s) were imported before line %d: import the rest as another file",
			byteSize(mbe.Limit), n, line))
		return true
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var s store.ExportedSession
		if err := json.Unmarshal(b, &s); err != nil {
			// The scanner hands over a line cut by the size limit as the last.
			if !tooBig() {
				stop(http.StatusBadRequest, apiInvalid, fmt.Sprintf("line %d is not an exported session", line))
			}
			return
		}
		if size := store.SealedSize(s); stored+size > lim.MaxStoredBytesPerUser {
			stop(http.StatusRequestEntityTooLarge, apiTooLarge, fmt.Sprintf(
				"line %d: your conversations would take %s, more than the %s each person may keep here; %d session(s) were imported before it",
				line, byteSize(stored+size), byteSize(lim.MaxStoredBytesPerUser), n))
			return
		} else {
			stored += size
		}
		if err := a.store.Import(r.Context(), c.Caller.Email, s); err != nil {
			status, typ, msg := http.StatusInternalServerError, apiInternal, "the session store failed"
			switch {
			case errors.Is(err, store.ErrConflict):
				status, typ, msg = http.StatusConflict, apiConflict, fmt.Sprintf("line %d: session %s or one of its messages already exists", line, s.ID)
			case errors.Is(err, store.ErrInvalid):
				status, typ, msg = http.StatusBadRequest, apiInvalid, fmt.Sprintf("line %d: %v", line, err)
			default:
				a.log.LogAttrs(r.Context(), slog.LevelError, "Import failed", slog.String("request_id", c.ID), slog.String("error", err.Error()))
			}
			stop(status, typ, msg)
			return
		}
		n++
	}
	if err := sc.Err(); err != nil {
		line++
		if tooBig() {
			return
		}
		stop(http.StatusBadRequest, apiInvalid, fmt.Sprintf("reading line %d failed (at most %d bytes a line, all of it within the time allowed)", line, maxImportLine))
		return
	}
	writeJSON(w, http.StatusOK, importResult{n})
}

// errorReader remembers the first error of r.
type errorReader struct {
	r   io.Reader
	err error
}

func (e *errorReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// byteSize writes n bytes for people: "256 MiB", "1.5 GiB", "900 bytes".
func byteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + unit
}

// serveDeleteMyData erases the caller's sessions, messages, key material
// and personal API keys. The ledger (no content) and the audit log stay.
func (a *API) serveDeleteMyData(w http.ResponseWriter, r *http.Request, c *Call) {
	if err := a.store.DeleteUserData(r.Context(), c.Caller.Email); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if a.keys != nil {
		a.keys.Erased(c.Caller.Email)
	}
	w.WriteHeader(http.StatusNoContent)
}
