package gatewayconfig

import (
	"os"
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
		"version":      {"gatewayconfig.chatgateway.dev/v1alpha1", "gatewayconfig.chatgateway.dev/v9", "apiVersion: must be"},
		"unknown key":  {"listen:", "listn:", `unknown field "listn"`},
		"price":        {`inputPerMTok: "0.035"`, `inputPerMTok: "cheap"`, "providers[1].models[1].pricing.inputPerMTok"},
		"default":      {"defaultModel: sonnet", "defaultModel: gpt-9", `defaultModel: "gpt-9" is not a model`},
		"fallback":     {"to: [claude-sonnet-bedrock]", "to: [nope]", "fallbacks[0].to[0]"},
		"email":        {"bob@example.com", "Bob@Example.com", "users[1].email"},
		"role":         {"role: User", "role: Owner", "users[1].role"},
		"time zone":    {"timeZone: UTC", "timeZone: Mars/Olympus", "quotas.timeZone"},
		"retry class":  {"retryOn: [Timeout,", "retryOn: [Sometimes,", "failover.retryOn[0]"},
		"token":        {"tokenFile: /etc/chatgateway/token/token", "tokenFile: \"\"", "auth.tokenFile"},
		"routing":      {"maxInputTokens: 800, model: nova-micro", "model: nova-mini", "routing.rules[0].model"},
		"regexp":       {"maxInputTokens: 800,", "messageMatches: \"(\",", "routing.rules[0].messageMatches"},
		"store":        {"store: {type: Embedded, path: /var/lib/chatgateway/store.db}", "store: {type: Postgres}", "sessions.store.dsnFile"},
		"provider url": {"baseURL: http://litellm:4000", "baseURL: litellm:4000", "providers[1].baseURL"},
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
