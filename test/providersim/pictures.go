package providersim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"math"
	"net/http"
	"slices"
	"strings"

	// The formats both APIs take, for image.DecodeConfig.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/webp"
)

// Pictures in a conversation (Anthropic image blocks, OpenAI image_url
// parts). The simulator checks them as the APIs document: a base64 source
// or data URL whose bytes are a picture of the stated media type (JPEG,
// PNG, GIF or WebP); http(s) URLs are taken unread. A model listed in
// Options.TextOnlyModels refuses a request with pictures, as a model
// without vision does. Each picture adds input tokens by the API's
// documented sizing (Anthropic: width × height / 750 after scaling to at
// most 1568 px a side and 1.15 megapixels; OpenAI: 85, plus 170 per
// 512-px tile at detail "high" or "auto" after scaling into 2048 × 2048
// and the short side to 768). When the last user message holds
// [[pictures]], the reply lists that message's pictures:
// "Pictures: image/png 8x6, image/jpeg 4x3." ("Pictures: none." without).

// picture is one picture the model reads.
type picture struct {
	mediaType     string // "" for a URL the simulator does not fetch
	width, height int
	tokens        int
}

var pictureTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// readPicture checks base64 data of mediaType and measures it.
func readPicture(mediaType, data string) (picture, error) {
	if !slices.Contains(pictureTypes, mediaType) {
		return picture{}, fmt.Errorf("media_type: Input should be %s", strings.Join(pictureTypes, ", "))
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return picture{}, fmt.Errorf("data: the image data is not valid base64")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return picture{}, fmt.Errorf("data: could not process image")
	}
	if "image/"+format != mediaType {
		return picture{}, fmt.Errorf("data: image does not match the provided media type %s", mediaType)
	}
	return picture{mediaType: mediaType, width: cfg.Width, height: cfg.Height}, nil
}

// anthropicPictureTokens: width × height / 750, after the API scales the
// picture to at most 1568 px on its long edge and about 1.15 megapixels.
func anthropicPictureTokens(w, h int) int {
	scale := min(1, 1568/float64(max(w, h)), math.Sqrt(1_150_000/float64(w*h)))
	sw, sh := int(float64(w)*scale), int(float64(h)*scale)
	return max((sw*sh+749)/750, 1)
}

// openaiPictureTokens: 85 at detail low; else 85 plus 170 per 512-px tile
// after scaling into 2048 × 2048 and the short side down to 768.
func openaiPictureTokens(w, h int, detail string) int {
	if detail == "low" || w == 0 {
		return 85
	}
	fw, fh := float64(w), float64(h)
	if s := 2048 / max(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	if s := 768 / min(fw, fh); s < 1 {
		fw, fh = fw*s, fh*s
	}
	tiles := int(math.Ceil(fw/512)) * int(math.Ceil(fh/512))
	return 85 + 170*tiles
}

// picturesMarker asks for a reply listing the last user message's pictures.
const picturesMarker = "[[pictures]]"

func describePictures(ps []picture) string {
	if len(ps) == 0 {
		return "Pictures: none."
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		if p.mediaType == "" {
			parts[i] = "url"
			continue
		}
		parts[i] = fmt.Sprintf("%s %dx%d", p.mediaType, p.width, p.height)
	}
	return "Pictures: " + strings.Join(parts, ", ") + "."
}

// refusePictures answers a request with pictures to a text-only model.
func (s *Server) refusePictures(p *prompt, openai bool) *apiError {
	if p.pictures == 0 || !slices.Contains(s.opts.TextOnlyModels, p.model) {
		return nil
	}
	if openai {
		return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invalid_value", param: "messages",
			msg: "Invalid content type. image_url is only supported by certain models."}
	}
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("model %s does not support image input", p.model)}
}
