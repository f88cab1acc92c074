package completion

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig reads the sizes of the pictures providers send
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// Pictures: OpenAI's POST /v1/images/generations for the models the
// config marks kind Image. A request asks for n pictures of one size and
// quality; the model's perImage prices say what one costs at each
// provider. It goes down the same parts as a completion: resolve the
// model, admit n × the price against the caller's quota (the worst case:
// a provider never makes more than asked), try the model's providers with
// failover, and meter what the provider made — the pictures returned ×
// the price — in the metrics, the ledger and the quota settlement.

// maxImagesResponse bounds a provider's answer: ten large pictures in
// base64.
const maxImagesResponse = 128 << 20

// maxPicture bounds one picture fetched from a provider's URL.
const maxPicture = 32 << 20

// Picture is one picture made for Generate's caller.
type Picture struct {
	Data []byte
	// MediaType is sniffed from Data: image/png, image/jpeg, image/gif or
	// image/webp.
	MediaType string
	// Width and Height are 0 when the format's header is not read here (webp).
	Width, Height int
	// RevisedPrompt is the prompt the model used, when it rewrote it.
	RevisedPrompt string
}

// pictureTypes are the media types a picture may have.
var pictureTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Generate makes the pictures ask describes for req's caller (req.ID,
// ClientID, Start, Caller and Snapshot are used; ask.Model names the
// image model's alias): admitted against the quota, tried with failover
// and metered like any request. It returns the pictures and the Outcome
// (Cost and Images are what the ledger has). The error is a
// *translate.Error for a refusal or a provider's failure, its Status and
// Msg fit to show the person; the Outcome is then still what was billed
// (a provider that made pictures the gateway could not read still bills).
func (c *Core) Generate(ctx context.Context, req Request, ask translate.ImageRequest) ([]Picture, Outcome, error) {
	req.Body, req.Client = nil, nil
	if ask.Prompt != nil {
		p := *ask.Prompt
		ask.Prompt = &p
	}
	x := c.images(ctx, req, &ask)
	if x.err != nil {
		return nil, x.out, x.err
	}
	return x.pics, x.out, nil
}

// ServeImages serves an HTTP caller's POST /v1/images/generations: req
// has Body and Client. The provider's answer reaches the caller as it
// came (OpenAI's shape: created, data with b64_json or url, and what the
// provider adds, such as usage); errors come in OpenAI's shape.
func (c *Core) ServeImages(ctx context.Context, req Request) {
	req.Front = translate.OpenAI
	c.images(ctx, req, nil)
}

// imageExchange is one request for pictures on its way through the core.
type imageExchange struct {
	core *Core
	ctx  context.Context
	req  Request
	ask  *translate.ImageRequest
	// size and quality are what is made and priced; n how many are asked.
	size, quality string
	n             int64
	res           *quota.Reservation
	out           Outcome
	err           *translate.Error
	served        *upstream.Route
	// pics are kept for Generate (an HTTP caller gets the provider's body).
	pics []Picture
	// metered: the final ledger row is queued and the quota settled.
	metered bool
}

func (c *Core) images(ctx context.Context, req Request, ask *translate.ImageRequest) *imageExchange {
	c.metrics.inFlight.Inc()
	defer c.metrics.inFlight.Dec()
	x := &imageExchange{core: c, ctx: ctx, req: req, ask: ask}
	defer x.finish(ctx)
	if ask == nil {
		body := upstream.GetBuffer()
		defer upstream.PutBuffer(body)
		if x.ask, x.err = x.read(body); x.err != nil {
			x.fail(x.err)
			return x
		}
	} else if e := ask.Validate(); e != nil {
		x.fail(e)
		return x
	}
	x.n = x.ask.Count()
	snap := req.Snapshot
	alias, e := imageModel(snap.Models, x.ask.Model)
	if e != nil {
		x.fail(e)
		return x
	}
	x.out.Model, x.out.Requested = alias, alias
	var routes []*upstream.Route
	for _, rt := range snap.Models.Plan(alias) {
		if len(rt.ImagePrices) > 0 { // a fallback to a chat model cannot make pictures
			routes = append(routes, rt)
		}
	}
	if len(routes) == 0 {
		x.fail(translate.Errorf(http.StatusBadGateway, "no provider serves model "+alias))
		return x
	}
	if x.size, x.quality, e = pick(alias, routes[0].ImagePrices, x.ask.Size, x.ask.Quality); e != nil {
		x.fail(e)
		return x
	}
	// A provider that has no price for the size and quality cannot be
	// billed for them, so it is not asked.
	var plan []*upstream.Route
	for _, rt := range c.failover.Order(routes) {
		if _, ok := rt.ImagePrices.Price(x.size, x.quality); ok {
			plan = append(plan, rt)
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snap.Failover.RequestTimeout)
	defer cancel()
	if !snap.Quotas.Limits(req.Caller.Email).None() {
		worst := make([]metering.Picodollars, len(plan))
		for i, rt := range plan {
			worst[i] = x.worstCase(rt)
		}
		if x.res, e = c.admit(actx, req, worst); e != nil {
			x.fail(e)
			return x
		}
	}
	r := c.failover.Run(actx, ctx, upstream.Plan{RequestID: req.ID, Alias: alias, Routes: plan, Policy: snap.Failover}, x)
	if x.out.ran(r) {
		x.fail(r.Err)
	}
	return x
}

func (x *imageExchange) read(buf *bytes.Buffer) (*translate.ImageRequest, *translate.Error) {
	if _, err := buf.ReadFrom(http.MaxBytesReader(x.req.Client, x.req.Body, x.req.Snapshot.MaxRequestBodyBytes)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, translate.Errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than this gateway's limit of %d bytes", mbe.Limit))
		}
		return nil, translate.Errorf(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	return translate.ParseImageRequest(buf.Bytes())
}

// imageModel resolves the model an images request names: an alias (or a
// provider's model id) of an Image model.
func imageModel(t *routing.Table, name string) (string, *translate.Error) {
	var images []string
	for _, a := range t.Aliases() {
		if t.IsImage(a) {
			images = append(images, a)
		}
	}
	which := "this gateway has none"
	if len(images) > 0 {
		which = "this gateway's are " + strings.Join(images, ", ")
	}
	if name == "" {
		return "", &translate.Error{Status: http.StatusBadRequest, Param: "model", Code: "missing_required_parameter",
			Msg: "model is required: name an image model (" + which + ")"}
	}
	choice, ok := t.Resolve(name)
	if !ok {
		// The unknown name is not echoed: callers choose it freely.
		return "", &translate.Error{Status: http.StatusNotFound, Code: "model_not_found", Param: "model",
			Msg: "the model is not served by this gateway; name an image model (" + which + ")"}
	}
	if choice.Auto || !t.IsImage(choice.Alias) {
		return "", &translate.Error{Status: http.StatusBadRequest, Param: "model", Code: "invalid_value",
			Msg: fmt.Sprintf("model %q is a chat model: it answers POST /v1/chat/completions and /v1/messages, and makes no pictures; name an image model (%s)", choice.Name(), which)}
	}
	return choice.Alias, nil
}

// pick is the size and quality made: what the caller named, the first
// priced one of the size or quality named, or the model's default; a
// combination without a price is refused, naming what is priced.
func pick(alias string, p metering.ImagePrices, size, quality string) (string, string, *translate.Error) {
	if size == "" && quality == "" {
		s, q := p.Default()
		return s, q, nil
	}
	for _, ip := range p {
		if (size == "" || ip.Size == size) && (quality == "" || ip.Quality == quality) {
			return ip.Size, ip.Quality, nil
		}
	}
	priced := make([]string, len(p))
	for i, ip := range p {
		priced[i] = ip.Size + " at " + ip.Quality
	}
	param, asked := "size", "size "+strconv.Quote(size)
	switch {
	case size == "":
		param, asked = "quality", "quality "+strconv.Quote(quality)
	case quality != "":
		asked += " at quality " + strconv.Quote(quality)
	}
	return "", "", &translate.Error{Status: http.StatusBadRequest, Param: param, Code: "invalid_value",
		Msg: fmt.Sprintf("model %s has no price for %s, so this gateway does not make it; it makes %s", alias, asked, strings.Join(priced, ", "))}
}

// worstCase is n pictures at rt's price.
func (x *imageExchange) worstCase(rt *upstream.Route) metering.Picodollars {
	each, _ := rt.ImagePrices.Price(x.size, x.quality)
	return metering.Picodollars(x.n) * each
}

// Cover implements upstream.Attempts.
func (x *imageExchange) Cover(ctx context.Context, rt *upstream.Route) bool {
	return x.res == nil || x.res.Cover(ctx, x.worstCase(rt))
}

// FailedOver implements upstream.Attempts.
func (x *imageExchange) FailedOver(from, to *upstream.Route, f *upstream.Failure) {
	x.core.metrics.failovers.WithLabelValues(from.Provider.Name(), to.Provider.Name(), string(f.Class)).Inc()
}

// Try implements upstream.Attempts: one provider asked for the pictures.
// Nothing reaches the caller until its whole answer has been read.
func (x *imageExchange) Try(ctx context.Context, rt *upstream.Route) upstream.Attempt {
	if _, ok := rt.Provider.(upstream.ImageSender); !ok {
		return upstream.Attempt{Unsupported: translate.Errorf(http.StatusBadRequest,
			fmt.Sprintf("provider %s speaks the Messages API, which makes no pictures", rt.Provider.Name()))}
	}
	body := upstream.NewBody()
	defer body.Release()
	t := translate.ImageTarget{ModelID: rt.ModelID, Size: x.size, Quality: x.quality, User: x.req.Caller.Upstream}
	if err := translate.WriteImageRequest(x.ask, t, body.Buffer()); err != nil {
		return upstream.Attempt{Unsupported: translate.Errorf(http.StatusBadRequest, "the request for pictures cannot be written")}
	}
	call, f := rt.SendImages(ctx, body)
	if f != nil {
		return upstream.Attempt{Failure: f}
	}
	defer call.Close()
	call.FirstByte()
	up := upstream.GetBuffer()
	defer upstream.PutBuffer(up)
	if _, err := up.ReadFrom(io.LimitReader(call.Resp.Body, maxImagesResponse)); err != nil {
		return upstream.Attempt{Failure: call.Failure(err)}
	}
	resp, err := translate.ParseImagesResponse(up.Bytes())
	if err != nil {
		return upstream.Attempt{Failure: &upstream.Failure{Class: upstream.ClassServerError, Msg: "the provider's answer could not be read", Err: err}}
	}
	// The provider bills what it made.
	x.answered(rt, http.StatusOK, int64(len(resp.Data)))
	if w := x.req.Client; w != nil {
		if x.ctx.Err() != nil {
			x.out.Status = StatusClientClosed // billed all the same
			return upstream.Attempt{OK: true}
		}
		// Metered before the body, which reaches the caller during Write:
		// a read of spend made as soon as they have it counts it. A
		// caller who hangs up during the write was billed as answered.
		x.meter(x.ctx)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(up.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(up.Bytes())
		return upstream.Attempt{OK: true}
	}
	pics, err := x.keep(ctx, resp)
	if err != nil {
		x.out.Status = http.StatusBadGateway
		x.err = translate.Errorf(http.StatusBadGateway, "the provider made the pictures, but they could not be read: "+err.Error())
		return upstream.Attempt{Broken: &upstream.Failure{Class: upstream.ClassServerError, Msg: x.err.Msg}}
	}
	x.pics = pics
	return upstream.Attempt{OK: true}
}

// keep reads the pictures of an answer for Generate: decoded from base64
// or fetched from the provider's URL (the page never loads a provider's
// URL itself), each checked to be a picture.
func (x *imageExchange) keep(ctx context.Context, resp *translate.ImagesResponse) ([]Picture, error) {
	out := make([]Picture, 0, len(resp.Data))
	for i, d := range resp.Data {
		var (
			data []byte
			err  error
		)
		if d.B64JSON != "" {
			data, err = base64.StdEncoding.DecodeString(d.B64JSON)
		} else {
			data, err = fetchPicture(ctx, d.URL)
		}
		if err != nil {
			return nil, fmt.Errorf("picture %d: %w", i, err)
		}
		p := Picture{Data: data, MediaType: http.DetectContentType(data), RevisedPrompt: d.RevisedPrompt}
		if !pictureTypes[p.MediaType] {
			return nil, fmt.Errorf("picture %d is %s, not a picture", i, p.MediaType)
		}
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
			p.Width, p.Height = cfg.Width, cfg.Height
		}
		out = append(out, p)
	}
	return out, nil
}

// pictureClient fetches pictures from providers' URLs; the request's
// deadline bounds it.
var pictureClient = &http.Client{Timeout: 2 * time.Minute}

func fetchPicture(ctx context.Context, url string) ([]byte, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, errors.New("its URL is not http or https")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errors.New("its URL is not valid")
	}
	resp, err := pictureClient.Do(req)
	if err != nil {
		return nil, errors.New("fetching it failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching it answered %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPicture+1))
	if err != nil {
		return nil, errors.New("fetching it failed")
	}
	if len(data) > maxPicture {
		return nil, fmt.Errorf("it is larger than %d bytes", maxPicture)
	}
	return data, nil
}

func (x *imageExchange) answered(rt *upstream.Route, status int, made int64) {
	x.served = rt
	x.out.Model, x.out.Provider, x.out.Status, x.out.Images = rt.Alias, rt.Provider.Name(), status, made
}

// meter prices the outcome and commits it, once: the quota settlement and
// the ledger row in one entry. The outcome is fixed from then.
func (x *imageExchange) meter(ctx context.Context) {
	if x.metered {
		return
	}
	x.metered = true
	o := &x.out
	if x.served != nil {
		each, _ := x.served.ImagePrices.Price(x.size, x.quality)
		o.Cost = metering.Picodollars(o.Images) * each
	}
	x.res.Settle(o.Cost)
	if o.Provider != "" {
		e := metering.Entry{Time: x.req.Start, RequestID: x.req.ID, ClientRequestID: x.req.ClientID, User: x.req.Caller.Email,
			Model: o.Model, Requested: o.Requested, Provider: o.Provider, Images: o.Images, Cost: o.Cost, Status: o.Status, Lease: x.res.Lease()}
		x.core.record(ctx, e)
	}
}

func (x *imageExchange) fail(e *translate.Error) {
	x.err = e
	x.out.Status = e.Status
	if x.req.Client != nil {
		x.out.Status = e.StatusIn(translate.OpenAI)
		translate.WriteError(x.req.Client, translate.OpenAI, e)
	}
}

// finish meters the request, if writing the answer has not already, and
// writes its metrics and one log line.
func (x *imageExchange) finish(ctx context.Context) {
	o := &x.out
	o.Duration = time.Since(x.req.Start)
	x.meter(ctx)
	who := x.req.Caller
	x.core.metrics.observeKind(who.EndUser, o, true)
	level := slog.LevelInfo
	if o.Status >= 500 {
		level = slog.LevelWarn
	}
	if x.core.log.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("request_id", x.req.ID),
			slog.String("user", who.Hash),
			slog.String("api", "images"),
			slog.String("model", o.Model),
			slog.String("provider", o.Provider),
			slog.Int("status", o.Status),
			slog.Int("attempts", o.Attempts),
			slog.Int64("images", o.Images),
			slog.String("size", x.size),
			slog.String("quality", x.quality),
			slog.String("cost_usd", o.Cost.String()),
			slog.Float64("duration_ms", float64(o.Duration.Microseconds())/1000),
		}
		if x.req.ClientID != "" {
			attrs = append(attrs, slog.String("client_request_id", x.req.ClientID))
		}
		x.core.log.LogAttrs(ctx, level, "Served request", attrs...)
	}
}
