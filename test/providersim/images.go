package providersim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OpenAI's image generation, POST /v1/images/generations, as the API
// documents it and as LiteLLM answers for Bedrock's Nova Canvas: a prompt
// in, n pictures out, each as base64 (b64_json) or as a URL the picture can
// be fetched from without the API key.
//
// Two families of model behave differently, as on the real API:
//   - GPT image models (gpt-image-*, chatgpt-image-*) always answer
//     b64_json (response_format is refused), echo the size, quality,
//     background and output_format they used, and report token usage.
//   - Every other model (dall-e-2, dall-e-3, Nova Canvas behind LiteLLM)
//     answers url by default or b64_json when asked, and reports no usage;
//     dall-e-3 takes only n=1 and adds a revised_prompt. Models that are
//     not OpenAI's also take Nova Canvas's quality "premium".
//
// The picture is deterministic: the requested size, in two colours derived
// from the model, prompt, quality and index, as a PNG (or a JPEG when a GPT
// image model is asked for output_format jpeg).
type imageRequest struct {
	Prompt         *string         `json:"prompt"`
	Model          string          `json:"model"`
	N              *int            `json:"n"`
	Size           string          `json:"size"`
	Quality        string          `json:"quality"`
	ResponseFormat string          `json:"response_format"`
	OutputFormat   string          `json:"output_format"`
	Background     string          `json:"background"`
	Stream         bool            `json:"stream"`
	User           json.RawMessage `json:"user"`
}

type imageData struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

type imageUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		TextTokens  int `json:"text_tokens"`
		ImageTokens int `json:"image_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type imagesResponse struct {
	Created      int64       `json:"created"`
	Data         []imageData `json:"data"`
	Background   string      `json:"background,omitempty"`
	OutputFormat string      `json:"output_format,omitempty"`
	Quality      string      `json:"quality,omitempty"`
	Size         string      `json:"size,omitempty"`
	Usage        *imageUsage `json:"usage,omitempty"`
}

// maxStoredImages bounds the pictures kept for their URLs (oldest go first).
const maxStoredImages = 256

func gptImageModel(model string) bool {
	return strings.HasPrefix(model, "gpt-image") || strings.HasPrefix(model, "chatgpt-image")
}

func (s *Server) handleImages(w http.ResponseWriter, r *http.Request, body []byte) {
	d := openaiDialect{}
	if !d.authorized(w, r, s) {
		return
	}
	var req imageRequest
	parseErr := json.Unmarshal(body, &req)
	prompt := ""
	if req.Prompt != nil {
		prompt = *req.Prompt
	}
	f, err := s.nextFault(ProviderOpenAI, prompt)
	if err != nil {
		d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: err.Error()})
		return
	}
	var (
		resp    *imagesResponse
		planErr *apiError
	)
	planned := func() (*imagesResponse, *apiError) {
		if resp == nil && planErr == nil {
			resp, planErr = s.planImages(r, &req, parseErr)
		}
		return resp, planErr
	}
	fullBody := func() []byte {
		p, e := planned()
		if e != nil {
			p = &imagesResponse{Data: []imageData{}}
		}
		b, _ := json.Marshal(p)
		return b
	}
	if s.applyFault(w, r, d, f, false, fullBody) {
		return
	}
	p, e := planned()
	if e != nil {
		d.writeError(w, s, *e)
		return
	}
	d.setRequestID(w, s)
	writeJSON(w, http.StatusOK, p)
}

func invalidParam(param, code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, code: code, msg: msg}
}

func (s *Server) planImages(r *http.Request, req *imageRequest, parseErr error) (*imagesResponse, *apiError) {
	if parseErr != nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"}
	}
	if req.Prompt == nil || strings.TrimSpace(*req.Prompt) == "" {
		return nil, invalidParam("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.")
	}
	if len(*req.Prompt) > 32000 {
		return nil, invalidParam("prompt", "string_above_max_length", "Invalid 'prompt': string too long. Expected a string with maximum length 32000.")
	}
	if req.Model == "" {
		req.Model = "dall-e-2" // the API's documented default
	}
	if !s.modelAllowed(req.Model) {
		err := openaiDialect{}.modelNotFound(req.Model)
		return nil, &err
	}
	gpt := gptImageModel(req.Model)
	if req.Stream {
		return nil, invalidParam("stream", "unsupported_value", "The simulator does not stream image generation.")
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if n < 1 || n > 10 {
		return nil, invalidParam("n", "invalid_value", fmt.Sprintf("Invalid 'n': integer below minimum value or above maximum value. Expected a value between 1 and 10, but got %d instead.", n))
	}
	if req.Model == "dall-e-3" && n != 1 {
		return nil, invalidParam("n", "invalid_value", "Invalid 'n': dall-e-3 only supports n=1.")
	}
	width, height, size, e := imageSize(req.Size)
	if e != nil {
		return nil, e
	}
	quality := req.Quality
	switch quality {
	case "", "auto":
		quality = "standard"
		if gpt {
			quality = "medium"
		}
	case "standard", "hd", "low", "medium", "high":
	case "premium":
		// Nova Canvas's higher quality, passed through by LiteLLM;
		// OpenAI's own models do not know it.
		if gpt || strings.HasPrefix(req.Model, "dall-e") {
			return nil, invalidParam("quality", "invalid_value", "Invalid value: 'premium'. Supported values are: 'standard', 'hd', 'low', 'medium', 'high' and 'auto'.")
		}
	default:
		return nil, invalidParam("quality", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'standard', 'hd', 'low', 'medium', 'high' and 'auto'.", req.Quality))
	}
	format := req.ResponseFormat
	switch {
	case gpt && format != "":
		return nil, invalidParam("response_format", "unknown_parameter", "Unknown parameter: 'response_format'. GPT image models always return b64_json.")
	case gpt:
		format = "b64_json"
	case format == "":
		format = "url"
	case format != "url" && format != "b64_json":
		return nil, invalidParam("response_format", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'url' and 'b64_json'.", format))
	}
	output := req.OutputFormat
	switch {
	case output != "" && !gpt:
		return nil, invalidParam("output_format", "unknown_parameter", "Unknown parameter: 'output_format'. It is supported for GPT image models only.")
	case output == "":
		output = "png"
	case output != "png" && output != "jpeg":
		return nil, invalidParam("output_format", "unsupported_value", fmt.Sprintf("The simulator encodes png and jpeg, not %q.", output))
	}

	out := &imagesResponse{Created: time.Now().Unix(), Data: make([]imageData, 0, n)}
	for i := range n {
		pic, err := drawImage(req.Model, *req.Prompt, quality, i, width, height, output)
		if err != nil {
			return nil, &apiError{status: http.StatusInternalServerError, msg: "encoding the picture failed"}
		}
		var item imageData
		if format == "b64_json" {
			item.B64JSON = base64.StdEncoding.EncodeToString(pic)
		} else {
			item.URL = s.storeImage(r, pic, output)
		}
		if req.Model == "dall-e-3" {
			item.RevisedPrompt = "A picture of " + strings.TrimSpace(*req.Prompt)
		}
		out.Data = append(out.Data, item)
	}
	if gpt {
		out.Size, out.Quality, out.OutputFormat, out.Background = size, quality, output, "opaque"
		u := &imageUsage{InputTokens: max(words(*req.Prompt), 1)}
		u.InputTokensDetails.TextTokens = u.InputTokens
		u.OutputTokens = n * imageTokens(width, height, quality)
		u.TotalTokens = u.InputTokens + u.OutputTokens
		out.Usage = u
	}
	return out, nil
}

// imageSize reads "WxH" (each a multiple of 16 from 256 to 4096, which
// covers the sizes of DALL·E, the GPT image models and Nova Canvas) or
// "auto" (1024x1024).
func imageSize(s string) (w, h int, norm string, e *apiError) {
	if s == "" || s == "auto" {
		return 1024, 1024, "1024x1024", nil
	}
	ws, hs, ok := strings.Cut(s, "x")
	w, errW := strconv.Atoi(ws)
	h, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || w < 256 || h < 256 || w > 4096 || h > 4096 || w%16 != 0 || h%16 != 0 {
		return 0, 0, "", invalidParam("size", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Use WIDTHxHEIGHT with each side a multiple of 16 from 256 to 4096, such as '1024x1024', or 'auto'.", s))
	}
	return w, h, s, nil
}

// imageTokens is the output a GPT image model bills for one picture: the
// documented figures for a 1024x1024 square (272, 1056 and 4160 tokens at
// low, medium and high quality), in proportion to the picture's area.
func imageTokens(w, h int, quality string) int {
	base := map[string]float64{"low": 272, "medium": 1056, "high": 4160, "standard": 1056, "hd": 4160}[quality]
	return int(math.Ceil(base * float64(w*h) / (1024 * 1024)))
}

// drawImage paints horizontal bands of two colours chosen by a hash of what
// was asked: the same request gives the same picture, another prompt or
// index another one.
func drawImage(model, prompt, quality string, index, w, h int, format string) ([]byte, error) {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%dx%d", model, prompt, quality, index, w, h)))
	pal := color.Palette{color.RGBA{sum[0], sum[1], sum[2], 255}, color.RGBA{sum[3], sum[4], sum[5], 255}}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	band := 16 + int(sum[6])%48
	for y := range h {
		if (y/band)%2 == 1 {
			row := img.Pix[y*img.Stride : y*img.Stride+w]
			for x := range row {
				row[x] = 1
			}
		}
	}
	var buf bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	} else {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	}
	return buf.Bytes(), err
}

// storeImage keeps a picture for its URL, as the API's storage does (the
// real one for an hour), and returns that URL.
func (s *Server) storeImage(r *http.Request, pic []byte, format string) string {
	id := fmt.Sprintf("img-%06d.%s", s.nextID(), format)
	s.mu.Lock()
	s.images[id] = pic
	s.imageOrder = append(s.imageOrder, id)
	if len(s.imageOrder) > maxStoredImages {
		delete(s.images, s.imageOrder[0])
		s.imageOrder = s.imageOrder[1:]
	}
	s.mu.Unlock()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/_sim/images/" + id
}

// handleStoredImage serves a picture by the URL a url-format answer gave.
// Like the API's storage links, it needs no API key.
func (s *Server) handleStoredImage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	pic, ok := s.images[id]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctype := "image/png"
	if strings.HasSuffix(id, ".jpeg") {
		ctype = "image/jpeg"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(pic)))
	_, _ = w.Write(pic)
}
