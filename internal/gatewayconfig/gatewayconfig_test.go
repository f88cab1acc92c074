package gatewayconfig

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseUSD(t *testing.T) {
	for in, want := range map[string]MicroUSD{
		"0": 0, "3": 3_000_000, "0.30": 300_000, "15.00": 15_000_000, "0.035": 35_000, "0.000001": 1,
	} {
		got, err := ParseUSD(in)
		if err != nil || got != want {
			t.Errorf("ParseUSD(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.", ".5", "1e3", "0.0000001", "1,5", " 1", "abc"} {
		if _, err := ParseUSD(in); err == nil {
			t.Errorf("ParseUSD(%q) accepted an invalid amount", in)
		}
	}
	if s := MicroUSD(3_450_001).String(); s != "3.450001" {
		t.Errorf("String() = %q", s)
	}
}

func TestLoadExample(t *testing.T) {
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers[0].Timeouts.FirstByte.Duration != 30*time.Second || c.Sessions.IdleTimeout.Duration != 2*time.Hour {
		t.Errorf("durations not parsed: %+v", c.Providers[0].Timeouts)
	}
	if got := c.Providers[1].Models[0].Pricing.CacheReadPerMTok; got != "3.00" {
		t.Errorf("cache-read price defaults to the input price, got %q", got)
	}
	if m := c.Providers[1].Models[0]; m.Kind != KindChat || !slices.Equal(m.Input, []string{InputText}) || m.TakesImages() {
		t.Errorf("a model defaults to a Chat model that reads text: kind %q, input %v", m.Kind, m.Input)
	}
	if m := c.Providers[0].Models[0]; !m.TakesImages() {
		t.Errorf("sonnet takes pictures: input %v", m.Input)
	}
	if m := c.Providers[1].Models[2]; m.Kind != KindImage || m.Input != nil || m.Pricing.CacheReadPerMTok != "" || m.ContextWindow != 0 {
		t.Errorf("an Image model gets no chat defaults: %+v", m)
	}
	// A marshalled config parses back to the same thing.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	base, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ from, to, want string }{
		"version":       {"gatewayconfig.chatgateway.dev/v1alpha1", "gatewayconfig.chatgateway.dev/v9", "apiVersion: must be"},
		"unknown key":   {"listen:", "listn:", `unknown field "listn"`},
		"price":         {`inputPerMTok: "0.035"`, `inputPerMTok: "cheap"`, "providers[1].models[1].pricing.inputPerMTok"},
		"default":       {"defaultModel: sonnet", "defaultModel: gpt-9", `defaultModel: "gpt-9" is not a model`},
		"fallback":      {"to: [claude-sonnet-bedrock]", "to: [nope]", "fallbacks[0].to[0]"},
		"email":         {"bob@example.com", "Bob@Example.com", "users[1].email"},
		"role":          {"role: User", "role: Owner", "users[1].role"},
		"time zone":     {"timeZone: UTC", "timeZone: Mars/Olympus", "quotas.timeZone"},
		"retry class":   {"retryOn: [Timeout,", "retryOn: [Sometimes,", "failover.retryOn[0]"},
		"token":         {"tokenFile: /etc/chatgateway/token/token", "tokenFile: \"\"", "auth.tokenFile"},
		"routing":       {"maxInputTokens: 800, model: nova-micro", "model: nova-mini", "routing.rules[0].model"},
		"regexp":        {"maxInputTokens: 800,", "messageMatches: \"(\",", "routing.rules[0].messageMatches"},
		"store":         {"store: {type: Embedded, path: /var/lib/chatgateway/store.db}", "store: {type: Postgres}", "sessions.store.dsnFile"},
		"provider url":  {"baseURL: http://litellm:4000", "baseURL: litellm:4000", "providers[1].baseURL"},
		"kind":          {"kind: Image", "kind: Video", `providers[1].models[2].kind: must be Chat or Image, got "Video"`},
		"input":         {"input: [Text, Image]", "input: [Text, Audio]", `providers[0].models[0].input[1]: must be Text or Image, got "Audio"`},
		"input twice":   {"input: [Text, Image]", "input: [Text, Text]", `providers[0].models[0].input[1]: duplicate "Text"`},
		"text input":    {"input: [Text, Image]", "input: [Image]", "providers[0].models[0].input: must include Text"},
		"image size":    {"size: 1024x1024", "size: 1024*1024", "providers[1].models[2].pricing.perImage[0].size"},
		"zero side":     {"size: 1024x1024", `size: "0x1024"`, "providers[1].models[2].pricing.perImage[0].size"},
		"image price":   {`usd: "0.04"`, `usd: "4e-2"`, "providers[1].models[2].pricing.perImage[0].usd"},
		"quality":       {"quality: standard", "quality: Standard", "providers[1].models[2].pricing.perImage[0].quality"},
		"same price":    {"size: 2048x2048, quality: premium", "size: 1024x1024, quality: standard", "providers[1].models[2].pricing.perImage[1]: duplicate price for 1024x1024 at standard quality"},
		"no prices":     {"      perImage:\n      - {size: 1024x1024, quality: standard, usd: \"0.04\"}\n      - {size: 2048x2048, quality: premium, usd: \"0.08\"}\n", "      perImage: []\n", "providers[1].models[2].pricing.perImage: required for an Image model"},
		"image tokens":  {"    kind: Image\n    pricing:\n", "    kind: Image\n    pricing:\n      inputPerMTok: \"0\"\n", "providers[1].models[2].pricing: an Image model is priced per picture only"},
		"chat picture":  {"pricing: {inputPerMTok: \"0.035\", outputPerMTok: \"0.14\"}", "pricing: {inputPerMTok: \"0.035\", outputPerMTok: \"0.14\", perImage: [{size: 1x1, quality: a, usd: \"1\"}]}", "providers[1].models[1].pricing.perImage: prices pictures, and this is a Chat model"},
		"image input":   {"    kind: Image\n", "    kind: Image\n    input: [Text]\n", "providers[1].models[2].input: is for Chat models"},
		"default kind":  {"defaultModel: sonnet", "defaultModel: nova-canvas", `defaultModel: "nova-canvas" is an Image model`},
		"routed kind":   {"maxInputTokens: 800, model: nova-micro", "maxInputTokens: 800, model: nova-canvas", `routing.rules[0].model: "nova-canvas" is an Image model`},
		"fallback kind": {"to: [claude-sonnet-bedrock]", "to: [nova-canvas]", `fallbacks[0].to[0]: "nova-canvas" is a Image model and "sonnet" a Chat model`},
		"two kinds":     {"  - name: haiku\n", "  - name: nova-canvas\n    id: x\n    pricing: {inputPerMTok: \"1\", outputPerMTok: \"1\"}\n  - name: haiku\n", `providers[1].models[2].kind: model "nova-canvas" is Image here and Chat at another provider`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(string(base), tc.from, tc.to, 1)
			if in == string(base) {
				t.Fatalf("case does not change the config: %q not found", tc.from)
			}
			_, err := Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseImageSize(t *testing.T) {
	for in, want := range map[string][2]int{"1024x1024": {1024, 1024}, "1280x720": {1280, 720}, "1x16384": {1, 16384}} {
		w, h, err := ParseImageSize(in)
		if err != nil || w != want[0] || h != want[1] {
			t.Errorf("ParseImageSize(%q) = %d, %d, %v; want %v", in, w, h, err, want)
		}
	}
	for _, in := range []string{"", "x", "1024", "1024x", "x1024", "0x10", "01024x1024", "+1x1", "1024X1024", "1024x1024x1", "16385x1", "-1x1", " 1x1", "1e3x1"} {
		if _, _, err := ParseImageSize(in); err == nil {
			t.Errorf("ParseImageSize(%q) accepted an invalid size", in)
		}
	}
}

func TestCanonicalEmail(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":       "alice@example.com",
		"Bob@Example.COM":         "bob@example.com",
		"o'neil+tag@example.com":  "o'neil+tag@example.com",
		"ZZ@EXAMPLE.ORG":          "zz@example.org",
		" spaced@example.com":     " spaced@example.com", // not trimmed: it is not on any allowlist
		"UPPER.and.lower@x.y.COM": "upper.and.lower@x.y.com",
	} {
		got, err := CanonicalEmail(in)
		if err != nil || got != want {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, wantRune := range map[string]string{
		"\u212aate@example.com":         "U+212A", // KELVIN SIGN, which strings.ToLower makes "k"
		"kate@example.com\u00a0":        "U+00A0", // a no-break space, which strings.TrimSpace strips
		"\u0130stanbul@example.com":     "U+0130", // LATIN CAPITAL LETTER I WITH DOT ABOVE
		"alice@ex\u0430mple.com":        "U+0430", // CYRILLIC SMALL LETTER A
		"\u017ftephen@example.com":      "U+017F", // LATIN SMALL LETTER LONG S, which folds to "s"
		"alice@example.com\xff":         "not ASCII",
		"\uff41lice@example.com":        "U+FF41", // FULLWIDTH LATIN SMALL LETTER A
		"alice@example.com\u200b":       "U+200B", // ZERO WIDTH SPACE
		"ALICE@EXAMPLE.COM\u212a":       "U+212A",
		"\u212a":                        "U+212A",
		"\u00e9lodie@example.com":       "U+00E9",
		"kate@example.com\u3000":        "U+3000",
		"\u2028alice@example.com":       "U+2028",
		"alice\u0000@example.com\u00a0": "U+00A0",
	} {
		got, err := CanonicalEmail(in)
		if err == nil || !strings.Contains(err.Error(), wantRune) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want an error naming %s", in, got, err, wantRune)
		}
	}
}
