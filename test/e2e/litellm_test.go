package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// liteLLMModel is one model_list entry of the stand-in: the model label
// LiteLLM's Prometheus callback gives it, and its own prices per token.
type liteLLMModel struct {
	label         string
	input, output float64
}

// liteLLMLabels are the labels LiteLLM's callback puts on
// litellm_spend_metric (litellm/types/integrations/prometheus.py,
// PrometheusMetricLabels.litellm_spend_metric).
var liteLLMLabels = []string{"end_user", "hashed_api_key", "api_key_alias", "model", "team", "team_alias", "user", "user_email", "client_ip", "user_agent", "model_id", "api_provider"}

// startLiteLLM is a stand-in for a LiteLLM proxy with success_callback
// [prometheus]: it answers /v1/chat/completions by forwarding to upstream
// (the provider simulator, in place of Bedrock), streams included, prices
// the usage block of each answer with its own table, as LiteLLM prices
// with its model cost map, and counts the cost in
// litellm_spend_metric_total on /metrics, under LiteLLM's metric name and
// labels. It returns its base URL and its host:port.
func startLiteLLM(t *testing.T, upstream string, models map[string]liteLLMModel) (string, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	spend := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "litellm_spend_metric_total", Help: "Total spend on LLM requests"}, liteLLMLabels)
	reg.MustRegister(spend)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Model, User string
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m, ok := models[req.Model]
		if !ok {
			http.Error(w, `{"error":{"message":"Invalid model name passed in model=`+req.Model+`","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		resp, err := http.Post(upstream+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		var usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		}
		// Relay line by line, keeping the last usage block seen: the whole
		// JSON answer, or the final chunk of a stream.
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadBytes('\n')
			if len(line) > 0 {
				_, _ = w.Write(line)
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				data := bytes.TrimPrefix(bytes.TrimSpace(line), []byte("data: "))
				var chunk struct {
					Usage *json.RawMessage `json:"usage"`
				}
				if json.Unmarshal(data, &chunk) == nil && chunk.Usage != nil {
					_ = json.Unmarshal(*chunk.Usage, &usage)
				}
			}
			if err != nil {
				break
			}
		}
		if resp.StatusCode != http.StatusOK {
			return
		}
		key := sha256.Sum256([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
		spend.With(prometheus.Labels{
			"end_user": req.User, "hashed_api_key": hex.EncodeToString(key[:]), "api_key_alias": "None",
			"model": m.label, "team": "None", "team_alias": "None", "user": "None", "user_email": "None",
			"client_ip": "127.0.0.1", "user_agent": r.UserAgent(), "model_id": fmt.Sprintf("%x", sha256.Sum256([]byte(req.Model)))[:16],
			"api_provider": "bedrock",
		}).Add(float64(usage.PromptTokens)*m.input + float64(usage.CompletionTokens)*m.output)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Listener.Addr().String()
}
