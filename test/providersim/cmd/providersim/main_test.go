package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:0", "--api-key", "k", "--models", "a,b"}, pw)
		pw.Close()
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	go io.Copy(io.Discard, pr)

	req, _ := http.NewRequest("GET", base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer k")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if res.StatusCode != 200 || len(list.Data) != 2 || list.Data[0].ID != "a" {
		t.Errorf("%d %+v", res.StatusCode, list)
	}

	// A hung request must not hold up shutdown.
	res, err = http.Post(base+"/_sim/faults", "text/plain", strings.NewReader("hang"))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("enqueue: %v %v", err, res)
	}
	res.Body.Close()
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"a","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer k")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		res, err := http.Get(base + "/_sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		var stats map[string]int
		_ = json.NewDecoder(res.Body).Decode(&stats)
		res.Body.Close()
		if stats["served"] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hung request never arrived")
		}
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"--nope"}, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}
