package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func attachment(mediaType, name string, data []byte) map[string]string {
	return map[string]string{"type": "image", "mediaType": mediaType, "name": name, "data": base64.StdEncoding.EncodeToString(data)}
}

// upstreamBody is the last request sim received, decoded.
func upstreamBody(t *testing.T, sim *providersim.Server) map[string]any {
	t.Helper()
	rec, _ := sim.LastRequest()
	var v map[string]any
	if err := rec.JSON(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPicturesInAChat: a picture sent with a message reaches the model as
// an image block, is stored with the message (listed without its bytes,
// served to its owner alone as a picture that cannot run), goes again
// with the history and with a regenerated turn.
func TestPicturesInAChat(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil, withPictures)
		var s store.Session
		e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "sonnet"}, http.StatusCreated, &s)
		path := "/api/sessions/" + s.ID + "/messages"
		pic := pngOf(t, 40, 30)
		code, h, evs := e.turnWith(path, bob, map[string]any{"content": "what is this? [[pictures]]", "attachments": []any{attachment("image/png", "été.png", pic)}})
		d, text := done(t, evs)
		if code != http.StatusOK || d.Status != "complete" || text != "Pictures: image/png 40x30." {
			t.Fatalf("turn: %d %+v %q", code, d, text)
		}
		// 4 words and the picture's 40×30/750 = 2 tokens.
		if d.Usage.InputTokens != 6 {
			t.Errorf("input tokens %d, want 6", d.Usage.InputTokens)
		}
		up := upstreamBody(t, e.anth)
		blocks, _ := json.Marshal(up["messages"].([]any)[0].(map[string]any)["content"])
		if want := `[{"source":{"data":"` + base64.StdEncoding.EncodeToString(pic) + `","media_type":"image/png","type":"base64"},"type":"image"},{"text":"what is this? [[pictures]]","type":"text"}]`; string(blocks) != want {
			t.Errorf("upstream content %s", blocks)
		}

		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if len(got.Messages) != 2 || got.Messages[0].ID != h.Get("X-User-Message-Id") || len(got.Messages[0].Attachments) != 1 {
			t.Fatalf("session: %+v", got.Messages)
		}
		at := got.Messages[0].Attachments[0]
		if at.ID == "" || at.MediaType != "image/png" || at.Name != "été.png" || at.Bytes != int64(len(pic)) || at.Width != 40 || at.Height != 30 || at.Data != nil {
			t.Errorf("listed attachment %+v", at)
		}
		_, raw := e.api("GET", "/api/sessions/"+s.ID, bob, nil)
		if strings.Contains(raw, `"data"`) {
			t.Error("the session's listing carries the pictures' bytes")
		}

		apath := "/api/sessions/" + s.ID + "/attachments/" + at.ID
		resp, body := e.do("GET", apath, authHeader(bob), "")
		if resp.StatusCode != http.StatusOK || body != string(pic) {
			t.Fatalf("attachment: %d, %d bytes", resp.StatusCode, len(body))
		}
		for k, v := range map[string]string{
			"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, max-age=31536000, immutable",
			"Content-Disposition": `inline; filename*=utf-8''%C3%A9t%C3%A9.png`,
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		for _, who := range []string{alice, ""} {
			if code, _ := e.api("GET", apath, who, nil); code == http.StatusOK {
				t.Errorf("%q read bob's picture", who)
			}
		}
		if code, _ := e.api("GET", "/api/sessions/"+s.ID+"/attachments/nope", bob, nil); code != http.StatusNotFound {
			t.Errorf("unknown picture: %d", code)
		}

		// The next turn sends the picture again with the history.
		_, _, evs = e.turn(path, bob, "and now? [[pictures]]")
		if d, text := done(t, evs); d.Status != "complete" || text != "Pictures: none." {
			t.Fatalf("second turn: %+v %q", d, text)
		}
		first, _ := json.Marshal(upstreamBody(t, e.anth)["messages"].([]any)[0])
		if !strings.Contains(string(first), base64.StdEncoding.EncodeToString(pic)) {
			t.Errorf("history without its picture: %.200s", first)
		}
		// Regenerating the first turn keeps its picture.
		_, _, evs = e.turnWith(path, bob, map[string]any{"content": "again [[pictures]]", "replace": got.Messages[0].ID})
		if d, text := done(t, evs); d.Status != "complete" || text != "Pictures: image/png 40x30." {
			t.Fatalf("regenerated: %+v %q", d, text)
		}
	})
}

// TestPictureRefusals: what a message may carry is checked before
// anything is stored or a model is called, and said in the /api shape.
func TestPictureRefusals(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withPictures)
	// The limits the page states before an upload.
	var me struct {
		Features json.RawMessage `json:"features"`
	}
	e.apiJSON("GET", "/api/me", bob, nil, http.StatusOK, &me)
	if want := `{"replace":true,"attachments":{"maxBytes":5242880,"maxCount":4,"mediaTypes":["image/png","image/jpeg","image/gif","image/webp"]},"images":true}`; string(me.Features) != want {
		t.Errorf("features %s, want %s", me.Features, want)
	}
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "sonnet"}, http.StatusCreated, &s)
	path := "/api/sessions/" + s.ID + "/messages"
	pic := pngOf(t, 4, 4)
	big := append(pngOf(t, 4, 4), make([]byte, 5<<20)...) // a PNG with trailing bytes past 5 MB
	five := []any{}
	for range 5 {
		five = append(five, attachment("image/png", "p.png", pic))
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"a text-only model", map[string]any{"content": "hi", "model": "gpt", "attachments": []any{attachment("image/png", "p.png", pic)}}, 400, "model gpt does not take pictures"},
		{"SVG", map[string]any{"content": "hi", "attachments": []any{attachment("image/svg+xml", "p.svg", []byte("<svg/>"))}}, 400, "mediaType must be one of image/png, image/jpeg, image/gif, image/webp"},
		{"a PNG said to be a JPEG", map[string]any{"content": "hi", "attachments": []any{attachment("image/jpeg", "p.jpg", pic)}}, 400, "attachment 1 is not a image/jpeg picture"},
		{"not a picture", map[string]any{"content": "hi", "attachments": []any{attachment("image/png", "p.png", []byte("<html>"))}}, 400, "attachment 1 is not a image/png picture"},
		{"too big", map[string]any{"content": "hi", "attachments": []any{attachment("image/png", "p.png", big)}}, 413, "pictures can be at most 5 MB"},
		{"too many", map[string]any{"content": "hi", "attachments": five}, 400, "at most 4 pictures"},
		{"not base64", `{"content": "hi", "attachments": [{"type": "image", "mediaType": "image/png", "data": "%%%"}]}`, 400, "JSON object with the documented fields"},
		{"not an image", map[string]any{"content": "hi", "attachments": []any{map[string]string{"type": "file", "mediaType": "image/png", "data": base64.StdEncoding.EncodeToString(pic)}}}, 400, `type must be \"image\"`},
	} {
		code, _, evs := e.turnWith(path, bob, tc.body)
		if code != tc.status || evs[0].Name != "body" || !strings.Contains(evs[0].Data, tc.msg) || !strings.Contains(evs[0].Data, `"error":{"type":`) {
			t.Errorf("%s: %d %.300s", tc.name, code, evs[0].Data)
		}
	}
	var got sessionWithMessages
	e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
	if len(got.Messages) != 0 || len(e.anth.Requests())+len(e.oai.Requests()) != 0 {
		t.Errorf("refusals stored %d messages, called the providers %d times", len(got.Messages), len(e.anth.Requests())+len(e.oai.Requests()))
	}
}

// TestPicturesRouteAndReserve: auto's rules skip a model that cannot read
// the pictures, the fallback that cannot read them is not tried, and the
// quota reserves each picture's bound.
func TestPicturesRouteAndReserve(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withPictures, func(c *gatewayconfig.Config) {
		// A turn's worst case on sonnet: (18 bytes + 1024) tokens at the
		// dearest input price ($3.75/M, a cache write) and 8192 out at
		// $15/M: $0.12679; a picture adds 1,600 tokens: $0.006.
		c.Users[1].DailyHardUSD = "0.1295"
	})
	var s store.Session
	e.apiJSON("POST", "/api/sessions", alice, map[string]string{"model": "auto"}, http.StatusCreated, &s)
	path := "/api/sessions/" + s.ID + "/messages"
	pic := pngOf(t, 4, 4)
	_, _, evs := e.turnWith(path, alice, map[string]any{"content": "short [[pictures]]", "attachments": []any{attachment("image/png", "p.png", pic)}})
	if d, text := done(t, evs); d.Model != "sonnet" || text != "Pictures: image/png 4x4." {
		t.Errorf("auto with a picture: %+v %q", d, text)
	}
	// The picture goes again with the history: the next turn, too.
	_, _, evs = e.turn(path, alice, "short")
	if d, _ := done(t, evs); d.Model != "sonnet" {
		t.Errorf("auto after a picture: %+v", d)
	}
	var plain store.Session
	e.apiJSON("POST", "/api/sessions", alice, map[string]string{"model": "auto"}, http.StatusCreated, &plain)
	_, _, evs = e.turn("/api/sessions/"+plain.ID+"/messages", alice, "short")
	if d, _ := done(t, evs); d.Model != "gpt" {
		t.Errorf("auto without a picture: %+v", d)
	}

	// sonnet falls back to gpt, which cannot read pictures: a picture turn
	// whose sonnet fails is not sent there.
	e.anth.Enqueue(providersim.Fault{Status: 529})
	var s2 store.Session
	e.apiJSON("POST", "/api/sessions", alice, map[string]string{"model": "sonnet"}, http.StatusCreated, &s2)
	before := len(e.oai.Requests())
	code, _, _ := e.turnWith("/api/sessions/"+s2.ID+"/messages", alice, map[string]any{"content": "hi", "attachments": []any{attachment("image/png", "p.png", pic)}})
	if code == http.StatusOK || len(e.oai.Requests()) != before {
		t.Errorf("a failed picture turn: %d, gpt called %d times", code, len(e.oai.Requests())-before)
	}

	var b store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "sonnet"}, http.StatusCreated, &b)
	bpath := "/api/sessions/" + b.ID + "/messages"
	code, h, evs := e.turnWith(bpath, bob, map[string]any{"content": "hi", "attachments": []any{attachment("image/png", "p.png", pic)}})
	if code != http.StatusTooManyRequests || h.Get("X-User-Message-Id") == "" || !strings.Contains(evs[0].Data, `"type":"rate_limit"`) {
		t.Errorf("a picture past the limit: %d %+v", code, evs)
	}
	// Without the picture the same message fits.
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "sonnet"}, http.StatusCreated, &b)
	code, _, evs = e.turnWith("/api/sessions/"+b.ID+"/messages", bob, map[string]any{"content": "hi"})
	if code != http.StatusOK {
		t.Errorf("the same turn without its picture: %d %+v", code, evs)
	}
}

// TestPictureTurn: a turn with an image model makes pictures from the
// message: an image event per picture, stored sealed with the reply and
// served by the attachments route, priced per picture in the done event
// and the ledger.
func TestPictureTurn(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withCanvas)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "canvas"}, http.StatusCreated, &s)
	path := "/api/sessions/" + s.ID + "/messages"
	code, h, evs := e.turnWith(path, bob, map[string]any{"content": "a lighthouse at dusk", "image": map[string]any{"size": "1024x1024", "quality": "premium", "n": 2}})
	if code != http.StatusOK || len(evs) != 4 || evs[0].Name != "session" || evs[1].Name != "image" || evs[2].Name != "image" || evs[3].Name != "done" {
		t.Fatalf("picture turn: %d %+v", code, evs)
	}
	var d struct {
		turnDone
		Usage struct{ Images int64 } `json:"usage"`
	}
	if err := json.Unmarshal([]byte(evs[3].Data), &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != "complete" || d.Usage.Images != 2 || d.CostUSD != "0.120000000000" || d.UserMessageID != h.Get("X-User-Message-Id") {
		t.Errorf("done %s", evs[3].Data)
	}
	var at store.Attachment
	if err := json.Unmarshal([]byte(evs[1].Data), &at); err != nil {
		t.Fatal(err)
	}
	if at.MediaType != "image/png" || at.Width != 1024 || at.Height != 1024 || at.Bytes == 0 {
		t.Errorf("image event %s", evs[1].Data)
	}
	resp, body := e.do("GET", "/api/sessions/"+s.ID+"/attachments/"+at.ID, authHeader(bob), "")
	if resp.StatusCode != http.StatusOK || int64(len(body)) != at.Bytes || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("the picture: %d, %d bytes", resp.StatusCode, len(body))
	}
	var got sessionWithMessages
	e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
	if len(got.Messages) != 2 || got.Messages[0].Content != "a lighthouse at dusk" || len(got.Messages[1].Attachments) != 2 {
		t.Errorf("session: %+v", got.Messages)
	}
	e.settle()
	days, err := e.st.UsageByDay(context.Background(), bob, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.UTC)
	if err != nil || len(days) != 1 || days[0].Images != 2 {
		t.Errorf("ledger: %+v %v", days, err)
	}

	// A picture model does not read pictures; an unknown size is the
	// provider's refusal, said in the /api shape.
	if code, _, evs := e.turnWith(path, bob, map[string]any{"content": "x", "attachments": []any{attachment("image/png", "p.png", pngOf(t, 2, 2))}}); code != 400 || !strings.Contains(evs[0].Data, "model canvas makes pictures; it does not read them") {
		t.Errorf("a picture sent to canvas: %d %+v", code, evs)
	}
	if code, _, evs := e.turnWith(path, bob, map[string]any{"content": "x", "image": map[string]any{"size": "7x7"}}); code != 400 || !strings.Contains(evs[0].Data, `"type":"invalid_request"`) {
		t.Errorf("an unpriced size: %d %+v", code, evs)
	}
}
