package providersim

import (
	"fmt"
	"net/http"
)

// apiError is an error answer; empty fields take the dialect's defaults for
// the status.
type apiError struct {
	status int
	typ    string
	code   string // OpenAI only
	param  string // OpenAI only
	msg    string
}

// dialect is what differs between the two providers' wire formats outside
// the completion handlers themselves.
type dialect interface {
	provider() string
	// authorized checks the API key and answers 401 when it is wrong.
	authorized(w http.ResponseWriter, r *http.Request, s *Server) bool
	writeError(w http.ResponseWriter, s *Server, e apiError)
	writeStreamError(e *sseWriter, status int)
	writeMalformedStream(e *sseWriter)
	overloadedStatus() int
	setRequestID(w http.ResponseWriter, s *Server)
	modelNotFound(id string) apiError
	modelObject(id string) any
	modelList(ids []string) any
}

// setRequestIDHeader sets a fresh request ID once per response.
func setRequestIDHeader(w http.ResponseWriter, s *Server, header string) string {
	if id := w.Header().Get(header); id != "" {
		return id
	}
	id := fmt.Sprintf("req_sim_%06d", s.nextID())
	w.Header().Set(header, id)
	return id
}
