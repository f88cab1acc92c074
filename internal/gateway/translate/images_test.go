package translate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestParseImageRequestRefuses(t *testing.T) {
	for _, c := range []struct {
		name, body, param, want string
	}{
		{"unknown member", `{"prompt":"a cat","model":"nova-canvas","stream":true}`, "", "stream is not a member of the images API"},
		{"priced in tokens", `{"prompt":"a cat","output_compression":50}`, "", "output_compression is not a member"},
		{"case variant", `{"Prompt":"a cat"}`, "", `member names are case-sensitive`},
		{"case variant of n", `{"prompt":"a cat","N":10}`, "", `use "n"`},
		{"duplicate n", `{"prompt":"a cat","n":1,"n":10}`, "", "n more than once"},
		{"n as a float", `{"prompt":"a cat","n":2.0}`, "", "n has a value of the wrong type (want an integer)"},
		{"n as a string", `{"prompt":"a cat","n":"2"}`, "", "n has a value of the wrong type"},
		{"n zero", `{"prompt":"a cat","n":0}`, "n", "n must be from 1 to 10 pictures, got 0"},
		{"n too many", `{"prompt":"a cat","n":11}`, "n", "n must be from 1 to 10 pictures, got 11"},
		{"no prompt", `{"model":"nova-canvas"}`, "prompt", "prompt is required"},
		{"null prompt", `{"prompt":null}`, "prompt", "prompt is required"},
		{"blank prompt", `{"prompt":"  \n"}`, "prompt", "prompt is required"},
		{"long prompt", `{"prompt":"` + strings.Repeat("é", 32001) + `"}`, "prompt", "prompt is 32001 characters long"},
		{"response format", `{"prompt":"a cat","response_format":"png"}`, "response_format", `response_format must be "url" or "b64_json"`},
		{"style", `{"prompt":"a cat","style":"noir"}`, "style", "style must be"},
		{"not an object", `["a cat"]`, "", "must be a JSON object"},
		{"not JSON", `{"prompt":`, "", "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, e := ParseImageRequest([]byte(c.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Status != http.StatusBadRequest || !strings.Contains(e.Msg, c.want) || e.Param != c.param {
				t.Fatalf("got %d %q param %q; want 400 with %q, param %q", e.Status, e.Msg, e.Param, c.want, c.param)
			}
			// OpenAI's error shape, param included when known.
			var env struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal(ErrorBody(OpenAI, e), &env); err != nil || env.Error.Type != "invalid_request_error" || env.Error.Message != e.Msg ||
				(c.param != "") != (env.Error.Param != nil) {
				t.Fatalf("error body %+v (%v)", env, err)
			}
		})
	}
}

func TestParseImageRequest(t *testing.T) {
	r, e := ParseImageRequest([]byte(`{"prompt":"a red fox","model":"nova-canvas","n":null,"size":"auto","quality":"auto","user":"someone"}`))
	if e != nil {
		t.Fatal(e)
	}
	if r.Count() != 1 || r.Size != "" || r.Quality != "" || *r.Prompt != "a red fox" {
		t.Fatalf("%+v", r)
	}
	var buf bytes.Buffer
	if err := WriteImageRequest(r, ImageTarget{ModelID: "bedrock/amazon.nova-canvas-v1:0", Size: "1024x1024", Quality: "standard", User: "u-hash"}, &buf); err != nil {
		t.Fatal(err)
	}
	// The caller's user is replaced; the priced size and quality are sent.
	want := `{"model":"bedrock/amazon.nova-canvas-v1:0","prompt":"a red fox","n":1,"size":"1024x1024","quality":"standard","user":"u-hash"}` + "\n"
	if buf.String() != want {
		t.Fatalf("upstream body\n got %s\nwant %s", buf.String(), want)
	}
	r, e = ParseImageRequest([]byte(`{"prompt":"two foxes","n":2,"response_format":"url","style":"natural"}`))
	if e != nil {
		t.Fatal(e)
	}
	buf.Reset()
	_ = WriteImageRequest(r, ImageTarget{ModelID: "m", Size: "s", Quality: "q", ResponseFormat: "b64_json"}, &buf)
	if !strings.Contains(buf.String(), `"n":2`) || !strings.Contains(buf.String(), `"response_format":"b64_json"`) || !strings.Contains(buf.String(), `"style":"natural"`) {
		t.Fatalf("upstream body %s", buf.String())
	}
}

func TestParseImagesResponse(t *testing.T) {
	r, err := ParseImagesResponse([]byte(`{"created":1700000000,"data":[{"b64_json":"iVBORw=="},{"url":"http://x/y.png","revised_prompt":"p"}],"usage":{"input_tokens":3}}`))
	if err != nil || len(r.Data) != 2 || r.Created != 1700000000 || r.Data[1].URL != "http://x/y.png" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseImagesResponse([]byte(`{"created":1,"data":[]}`)); err != nil || len(r.Data) != 0 {
		t.Fatalf("empty list: %+v %v", r, err)
	}
	for _, bad := range []string{`{"created":1}`, `{"data":[{}]}`, `{"data":{}}`, `not json`} {
		if _, err := ParseImagesResponse([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
