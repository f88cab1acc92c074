package chatapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func (a *API) exportRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/me/export", a.authed(a.serveMyExport))
	m.HandleFunc("POST /api/me/import", a.authed(a.serveMyImport))
	m.HandleFunc("DELETE /api/me/data", a.authed(a.serveDeleteMyData))
}

// exportDoc is the JSON export: every session with its messages.
type exportDoc struct {
	Owner      string                  `json:"owner"`
	ExportedAt time.Time               `json:"exportedAt"`
	Sessions   []store.ExportedSession `json:"sessions"`
}

func (a *API) serveMyExport(w http.ResponseWriter, r *http.Request, c *Call) {
	a.writeExport(w, r, c, c.Caller.Email)
}

// writeExport answers owner's sessions: one JSON document, or with
// ?format=jsonl one session per line, streamed from one snapshot so that
// memory stays bounded by the largest session.
func (a *API) writeExport(w http.ResponseWriter, r *http.Request, c *Call, owner string) {
	switch r.URL.Query().Get("format") {
	case "", "json":
	case "jsonl":
		a.writeExportJSONL(w, r, c, owner)
		return
	default:
		writeAPIError(w, http.StatusBadRequest, "format must be json or jsonl")
		return
	}
	doc := exportDoc{Owner: owner, ExportedAt: a.now().UTC(), Sessions: []store.ExportedSession{}}
	err := a.store.Export(r.Context(), owner, func(s store.ExportedSession) error {
		doc.Sessions = append(doc.Sessions, s)
		return nil
	})
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="chat-export.json"`)
	writeJSON(w, http.StatusOK, doc)
}

func (a *API) writeExportJSONL(w http.ResponseWriter, r *http.Request, c *Call, owner string) {
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", `attachment; filename="chat-export.jsonl"`)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	rc := http.NewResponseController(w)
	wrote := false
	err := a.store.Export(r.Context(), owner, func(s store.ExportedSession) error {
		if !wrote {
			w.WriteHeader(http.StatusOK)
			wrote = true
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		if bw.Buffered() > 16<<10 {
			if err := bw.Flush(); err != nil {
				return err
			}
			_ = rc.Flush()
		}
		return nil
	})
	if err != nil && !wrote {
		a.storeError(w, r, c, err)
		return
	}
	if err != nil {
		// Headers are gone: cut the stream so the client sees it fail
		// rather than take a short export for a whole one.
		a.log.LogAttrs(r.Context(), slog.LevelError, "Export failed mid-stream", slog.String("request_id", c.ID), slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
	if !wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = bw.Flush()
}

// maxImportLine bounds one session of an import.
const maxImportLine = 64 << 20

type importResult struct {
	Imported int `json:"imported"`
}

// serveMyImport reads JSONL (one exported session per line, as
// /api/me/export?format=jsonl writes) into the caller's sessions, keeping
// ids and times. A session already present stops the import with 409 and
// says how many went in before it.
func (a *API) serveMyImport(w http.ResponseWriter, r *http.Request, c *Call) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	n, line := 0, 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var s store.ExportedSession
		if err := json.Unmarshal(b, &s); err != nil {
			writeJSON(w, http.StatusBadRequest, struct {
				apiErrorBody
				importResult
			}{apiErrorBody{apiErrorDetail{apiInvalid, fmt.Sprintf("line %d is not an exported session", line)}}, importResult{n}})
			return
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
			writeJSON(w, status, struct {
				apiErrorBody
				importResult
			}{apiErrorBody{apiErrorDetail{typ, msg}}, importResult{n}})
			return
		}
		n++
	}
	if err := sc.Err(); err != nil {
		writeJSON(w, http.StatusBadRequest, struct {
			apiErrorBody
			importResult
		}{apiErrorBody{apiErrorDetail{apiInvalid, fmt.Sprintf("reading line %d failed (at most %d bytes a line)", line+1, maxImportLine)}}, importResult{n}})
		return
	}
	writeJSON(w, http.StatusOK, importResult{n})
}

// serveDeleteMyData erases the caller's sessions, messages and key
// material. The ledger (no content) and the audit log stay.
func (a *API) serveDeleteMyData(w http.ResponseWriter, r *http.Request, c *Call) {
	if err := a.store.DeleteUserData(r.Context(), c.Caller.Email); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
