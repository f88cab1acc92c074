package providersim_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		spec    string
		want    providersim.Fault
		wantErr bool
	}{
		{spec: "529", want: providersim.Fault{Status: 529}},
		{spec: "status=429,retry-after=2", want: providersim.Fault{Status: 429, RetryAfter: "2"}},
		{spec: "retry-after=7", want: providersim.Fault{Status: 429, RetryAfter: "7"}},
		{spec: "overloaded", want: providersim.Fault{Overloaded: true}},
		{spec: "overloaded,retry-after=1", want: providersim.Fault{Overloaded: true, RetryAfter: "1"}},
		{spec: "delay=200ms", want: providersim.Fault{DelayFirstByte: 200 * time.Millisecond}},
		{spec: "reset=3", want: providersim.Fault{ResetAfterEvents: 3}},
		{spec: "stall=2", want: providersim.Fault{StallAfterEvents: 2}},
		{spec: "error-after=4", want: providersim.Fault{ErrorAfterEvents: 4}},
		{spec: "error-after=4,500", want: providersim.Fault{ErrorAfterEvents: 4, Status: 500}},
		{spec: "malformed", want: providersim.Fault{Malformed: true}},
		{spec: "hang", want: providersim.Fault{HangUntilCancel: true}},
		{spec: "disconnect", want: providersim.Fault{Disconnect: true}},
		{spec: " provider=Anthropic , 529 , times=1 ", want: providersim.Fault{Provider: "anthropic", Status: 529, Times: 1}},
		{spec: "delay=1s,500,id=first", want: providersim.Fault{DelayFirstByte: time.Second, Status: 500}},
		{spec: "", wantErr: true},
		{spec: "  ", wantErr: true},
		{spec: "200", wantErr: true},
		{spec: "status=600", wantErr: true},
		{spec: "status=abc", wantErr: true},
		{spec: "teapot", wantErr: true},
		{spec: "delay=soon", wantErr: true},
		{spec: "reset=0", wantErr: true},
		{spec: "stall=-1", wantErr: true},
		{spec: "times=x", wantErr: true},
		{spec: "retry-after=", wantErr: true},
		{spec: "provider=gemini", wantErr: true},
		{spec: "colour=red", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := providersim.ParseFault(tt.spec)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFault(%q) = %+v, want error", tt.spec, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFault(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFault(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestFindFaultMarker(t *testing.T) {
	tests := []struct {
		text   string
		spec   string
		wantOK bool
	}{
		{"hello [[fault:529]] there", "529", true},
		{"[[fault:status=429,retry-after=2]]", "status=429,retry-after=2", true},
		{"two [[fault:500]] [[fault:529]]", "500", true},
		{"[[fault:]]", "", true},
		{"no marker", "", false},
		{"[[fault 529]]", "", false},
		{"[[tool]]", "", false},
	}
	for _, tt := range tests {
		spec, ok := providersim.FindFaultMarker(tt.text)
		if spec != tt.spec || ok != tt.wantOK {
			t.Errorf("FindFaultMarker(%q) = %q, %v; want %q, %v", tt.text, spec, ok, tt.spec, tt.wantOK)
		}
	}
}

func TestFaultJSON(t *testing.T) {
	in := providersim.Fault{Status: 503, RetryAfter: "3", DelayFirstByte: 250 * time.Millisecond, Provider: "openai", Times: 2}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["delay_first_byte"] != "250ms" {
		t.Errorf("delay_first_byte encoded as %v, want \"250ms\" in %s", m["delay_first_byte"], b)
	}
	var out providersim.Fault
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}

	if err := json.Unmarshal([]byte(`{"delay_first_byte": 40}`), &out); err != nil || out.DelayFirstByte != 40*time.Millisecond {
		t.Errorf("milliseconds: got %v, %v", out.DelayFirstByte, err)
	}
	for _, bad := range []string{`{"status": 200}`, `{"provider": "x"}`, `{"delay_first_byte": "later"}`, `{"times": -1}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s): want error", bad)
		}
	}
}
