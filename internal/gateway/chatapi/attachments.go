package chatapi

import (
	"bytes"
	"fmt"
	"image"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	// The formats a picture may be in, for image.DecodeConfig.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/webp"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Pictures sent with a chat message. The limits are the gateway's, said
// to the page in GET /api/me's features before it uploads anything.
const (
	// maxAttachmentBytes bounds one picture, decoded: the smallest of the
	// providers' limits (Anthropic's API takes 5 MB an image).
	maxAttachmentBytes = 5 << 20
	// maxAttachments bounds the pictures of one message.
	maxAttachments = 4
	// maxAttachmentName bounds a picture's file name, in bytes.
	maxAttachmentName = 255
)

// attachmentTypes are the media types both dialects take as base64
// pictures. Never SVG: it is a document that can run script.
var attachmentTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// Features is what this gateway lets the page do: GET /api/me's features.
type Features struct {
	Replace     bool                `json:"replace"`
	Attachments *AttachmentFeatures `json:"attachments,omitempty"`
	Images      bool                `json:"images,omitempty"`
}

// AttachmentFeatures are the limits on pictures sent with a message.
type AttachmentFeatures struct {
	MaxBytes   int64    `json:"maxBytes"`
	MaxCount   int      `json:"maxCount"`
	MediaTypes []string `json:"mediaTypes"`
}

// Features is what the gateway implements of the page's needs, for GET
// /api/me.
func (a *API) Features() Features {
	return Features{
		Replace:     true,
		Images:      true,
		Attachments: &AttachmentFeatures{MaxBytes: maxAttachmentBytes, MaxCount: maxAttachments, MediaTypes: slices.Clone(attachmentTypes)},
	}
}

// sendAttachment is a picture in a turn's request; Data is base64 in the
// JSON, decoded by encoding/json.
type sendAttachment struct {
	Type      string `json:"type"`
	MediaType string `json:"mediaType"`
	Name      string `json:"name"`
	Data      []byte `json:"data"`
}

// turnBodyLimit bounds a turn's body: the text the config allows, and the
// pictures base64-encoded with room for their fields.
func turnBodyLimit(configured int64) int64 {
	return configured + maxAttachments*(int64(maxAttachmentBytes+2)/3*4+1024)
}

// readAttachments checks the pictures of a turn and measures them. The
// bytes must be the picture the media type says: the page shows them
// again from the gateway's origin.
func readAttachments(in []sendAttachment) ([]store.NewAttachment, int, string) {
	if len(in) > maxAttachments {
		return nil, http.StatusBadRequest, fmt.Sprintf("a message can carry at most %d pictures", maxAttachments)
	}
	out := make([]store.NewAttachment, 0, len(in))
	for i, at := range in {
		name := at.Name
		if name == "" {
			name = fmt.Sprintf("picture %d", i+1)
		}
		if len(name) > maxAttachmentName || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, http.StatusBadRequest, fmt.Sprintf("attachment %d: the name must be printable text of at most %d bytes", i+1, maxAttachmentName)
		}
		mt, _, err := mime.ParseMediaType(at.MediaType)
		switch {
		case at.Type != "image":
			return nil, http.StatusBadRequest, fmt.Sprintf(`attachment %d: type must be "image"`, i+1)
		case err != nil || !slices.Contains(attachmentTypes, mt):
			return nil, http.StatusBadRequest, fmt.Sprintf("attachment %d: mediaType must be one of %s", i+1, strings.Join(attachmentTypes, ", "))
		case len(at.Data) == 0:
			return nil, http.StatusBadRequest, fmt.Sprintf("attachment %d: data must be the picture in base64", i+1)
		case len(at.Data) > maxAttachmentBytes:
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("attachment %d is %.1f MB; pictures can be at most %d MB", i+1, float64(len(at.Data))/(1<<20), maxAttachmentBytes>>20)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(at.Data))
		if err != nil || "image/"+format != mt {
			return nil, http.StatusBadRequest, fmt.Sprintf("attachment %d is not a %s picture", i+1, mt)
		}
		out = append(out, store.NewAttachment{MediaType: mt, Name: name, Width: cfg.Width, Height: cfg.Height, Data: at.Data})
	}
	return out, 0, ""
}

// pictureTokens estimates what a picture adds to a conversation, for the
// context bound: Anthropic's documented width × height / 750 tokens after
// it scales a picture to about 1.15 megapixels (1,600 tokens at most);
// OpenAI's high-detail tiles come to fewer. A picture of unknown size
// counts as the most.
func pictureTokens(width, height int) int64 {
	if width <= 0 || height <= 0 {
		return 1600
	}
	return min(max((int64(width)*int64(height)+749)/750, 1), 1600)
}

// pictureRef names a stored picture a turn sends again with its history:
// turns[turn].Pictures[index] gets its bytes from the store.
type pictureRef struct {
	turn, index int
	id          string
}

// serveAttachment answers a picture of the caller's session: the bytes as
// stored, under headers that keep them a picture (never sniffed, never a
// document that runs, never framed) and cacheable (an id names fixed
// bytes).
func (a *API) serveAttachment(w http.ResponseWriter, r *http.Request, c *Call) {
	at, err := a.store.ReadAttachment(r.Context(), c.Caller.Email, r.PathValue("id"), r.PathValue("aid"))
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeAttachment(w, at)
}

func writeAttachment(w http.ResponseWriter, at store.Attachment) {
	h := w.Header()
	mt := at.MediaType
	if !slices.Contains(attachmentTypes, mt) {
		// Only the types above are ever stored; anything else is served
		// as bytes to download, not to render.
		mt = "application/octet-stream"
	}
	h.Set("Content-Type", mt)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": at.Name}))
	h.Set("Content-Length", fmt.Sprint(len(at.Data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(at.Data)
}

// loadPictures reads the bytes of the history's pictures a turn sends.
func (a *API) loadPictures(r *http.Request, owner, sessionID string, turns []translate.Message, refs []pictureRef) error {
	for _, ref := range refs {
		at, err := a.store.ReadAttachment(r.Context(), owner, sessionID, ref.id)
		if err != nil {
			return err
		}
		turns[ref.turn].Pictures[ref.index].Data = at.Data
	}
	return nil
}
