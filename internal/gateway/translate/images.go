package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

// ImageRequest is a body of OpenAI's POST /v1/images/generations, decoded
// strictly (see strict.go): its members are the allow-list of what the
// gateway forwards. Members that change what a picture costs beyond its
// size and quality (partial images, streaming, GPT image models' output
// options priced in tokens) are not among them.
type ImageRequest struct {
	Prompt *string `json:"prompt"`
	Model  string  `json:"model"`
	// N is how many pictures; nil (absent or null) is one.
	N              *int64 `json:"n"`
	Size           string `json:"size"`
	Quality        string `json:"quality"`
	ResponseFormat string `json:"response_format"`
	Style          string `json:"style"`
	// User is accepted, as the SDKs send it; the provider is told the
	// caller the gateway identified instead.
	User string `json:"user"`
}

// MaxImages bounds n, as OpenAI's API does.
const MaxImages = 10

// maxImagePrompt is the longest prompt OpenAI's image models take, in
// characters.
const maxImagePrompt = 32000

const imagesAPI = "the images API"

// ParseImageRequest decodes a caller's body and refuses, with OpenAI's
// error naming the member, what the gateway cannot forward or price.
// "auto" size and quality read as unset: the model's priced default.
func ParseImageRequest(body []byte) (*ImageRequest, *Error) {
	var r ImageRequest
	if err := jsonv2.Unmarshal(body, &r, strictOptions); err != nil {
		return nil, strictError(imagesAPI, err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func paramError(param, code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...), Param: param, Code: code}
}

// Validate checks a request as ParseImageRequest does: for one built
// inside the gateway.
func (r *ImageRequest) Validate() *Error {
	if r.Prompt == nil || strings.TrimSpace(*r.Prompt) == "" {
		return paramError("prompt", "missing_required_parameter", "prompt is required: say what the picture should show")
	}
	if n := utf8.RuneCountInString(*r.Prompt); n > maxImagePrompt {
		return paramError("prompt", "string_above_max_length", "prompt is %d characters long; the most is %d", n, maxImagePrompt)
	}
	if r.N != nil && (*r.N < 1 || *r.N > MaxImages) {
		return paramError("n", "invalid_value", "n must be from 1 to %d pictures, got %d", MaxImages, *r.N)
	}
	switch r.ResponseFormat {
	case "", "url", "b64_json":
	default:
		return paramError("response_format", "invalid_value", "response_format must be \"url\" or \"b64_json\"")
	}
	switch r.Style {
	case "", "vivid", "natural":
	default:
		return paramError("style", "invalid_value", "style must be \"vivid\" or \"natural\"")
	}
	if r.Size == "auto" {
		r.Size = ""
	}
	if r.Quality == "auto" {
		r.Quality = ""
	}
	return nil
}

// Count is how many pictures are asked for.
func (r *ImageRequest) Count() int64 {
	if r.N == nil {
		return 1
	}
	return *r.N
}

// ImageTarget is what one provider is asked for: its model id, the size
// and quality priced, and the caller as the provider sees them.
type ImageTarget struct {
	ModelID, Size, Quality, User string
	// ResponseFormat overrides the caller's ("" keeps it).
	ResponseFormat string
}

type imageUpstream struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              int64  `json:"n"`
	Size           string `json:"size"`
	Quality        string `json:"quality"`
	ResponseFormat string `json:"response_format,omitempty"`
	Style          string `json:"style,omitempty"`
	User           string `json:"user,omitempty"`
}

// WriteImageRequest writes the provider's body: always the size and
// quality the gateway priced, so the picture made is the one billed.
func WriteImageRequest(r *ImageRequest, t ImageTarget, out *bytes.Buffer) error {
	rf := r.ResponseFormat
	if t.ResponseFormat != "" {
		rf = t.ResponseFormat
	}
	return json.NewEncoder(out).Encode(imageUpstream{Model: t.ModelID, Prompt: *r.Prompt, N: r.Count(),
		Size: t.Size, Quality: t.Quality, ResponseFormat: rf, Style: r.Style, User: t.User})
}

// ImagesResponse is a provider's answer: each picture as base64 or as a
// URL to fetch it from.
type ImagesResponse struct {
	Created int64       `json:"created"`
	Data    []ImageData `json:"data"`
}

// ImageData is one picture of an answer.
type ImageData struct {
	B64JSON       string `json:"b64_json"`
	URL           string `json:"url"`
	RevisedPrompt string `json:"revised_prompt"`
}

var errNoPictures = errors.New("the answer has no data list")

// ParseImagesResponse reads a provider's answer. Members it does not know
// (usage, size, output_format…) are left to the caller's copy of the body.
func ParseImagesResponse(body []byte) (*ImagesResponse, error) {
	var v struct {
		ImagesResponse
		Data *[]ImageData `json:"data"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	if v.Data == nil {
		return nil, errNoPictures
	}
	v.ImagesResponse.Data = *v.Data
	for i, d := range v.ImagesResponse.Data {
		if d.B64JSON == "" && d.URL == "" {
			return nil, fmt.Errorf("picture %d has neither b64_json nor url", i)
		}
	}
	return &v.ImagesResponse, nil
}
