package gatewayconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Load reads, parses and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading gateway config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML (or JSON) strictly, applies defaults and validates.
// Unknown fields are errors: operator and gateway ship together, so an
// unknown field is a typo or a version mismatch, never something to ignore.
func Parse(b []byte) (*Config, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("decoding gateway config: %w", err)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Marshal renders the config as YAML with a stable field order.
func Marshal(c *Config) ([]byte, error) {
	return yaml.Marshal(c)
}

// Default fills in what an empty field means.
func (c *Config) Default() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.RequestBodyTimeout.Duration == 0 {
		c.RequestBodyTimeout = D(DefaultRequestBodyTimeout)
	}
	if c.Import.MaxBodyBytes == 0 {
		c.Import.MaxBodyBytes = DefaultMaxImportBytes
	}
	if c.Import.MaxStoredBytesPerUser == 0 {
		c.Import.MaxStoredBytesPerUser = DefaultMaxStoredBytesPerUser
	}
	if c.Import.BodyTimeout.Duration == 0 {
		c.Import.BodyTimeout = D(DefaultImportBodyTimeout)
	}
	if c.MetricsListen == "" {
		c.MetricsListen = DefaultMetricsListen
	}
	if c.MaxRequestBodyBytes == 0 {
		c.MaxRequestBodyBytes = DefaultMaxBodySize
	}
	if c.Auth.EmailHeader == "" {
		c.Auth.EmailHeader = "X-Forwarded-Email"
	}
	if c.Identity.Upstream == "" {
		c.Identity.Upstream = IdentityEmail
	}
	if c.Identity.MetricsEndUser == "" {
		c.Identity.MetricsEndUser = IdentityEmail
	}
	if c.Failover.FailureThreshold == 0 {
		c.Failover.FailureThreshold = 3
	}
	if c.Failover.Cooldown.Duration == 0 {
		c.Failover.Cooldown = D(time.Minute)
	}
	if c.Failover.RequestTimeout.Duration == 0 {
		c.Failover.RequestTimeout = D(5 * time.Minute)
	}
	if c.Sessions.Scope == "" {
		c.Sessions.Scope = "PerSender"
	}
	if c.Sessions.IdleTimeout.Duration == 0 {
		c.Sessions.IdleTimeout = D(120 * time.Minute)
	}
	if c.Sessions.Retention.Duration == 0 {
		c.Sessions.Retention = D(90 * 24 * time.Hour)
	}
	if c.Sessions.Store.Type == "" {
		c.Sessions.Store.Type = StoreEmbedded
	}
	if c.Quotas.TimeZone == "" {
		c.Quotas.TimeZone = "UTC"
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Timeouts.Connect.Duration == 0 {
			p.Timeouts.Connect = D(5 * time.Second)
		}
		if p.Timeouts.FirstByte.Duration == 0 {
			p.Timeouts.FirstByte = D(30 * time.Second)
		}
		for j := range p.Models {
			m := &p.Models[j]
			if m.Kind == "" {
				m.Kind = KindChat
			}
			if m.Kind != KindChat {
				continue
			}
			if len(m.Input) == 0 {
				m.Input = []string{InputText}
			}
			if m.Pricing.CacheReadPerMTok == "" {
				m.Pricing.CacheReadPerMTok = m.Pricing.InputPerMTok
			}
			if m.Pricing.CacheWritePerMTok == "" {
				m.Pricing.CacheWritePerMTok = m.Pricing.InputPerMTok
			}
			if m.ContextWindow == 0 {
				m.ContextWindow = 200000
			}
			if m.MaxOutputTokens == 0 {
				m.MaxOutputTokens = 8192
			}
		}
	}
}

// Validate reports every problem, each prefixed with the path of its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.APIVersion != APIVersion {
		bad("apiVersion", "must be %q, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != Kind {
		bad("kind", "must be %q, got %q", Kind, c.Kind)
	}
	if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") { // port 0: each listener gets a port of its own
		bad("metricsListen", "must differ from listen (%q): metrics have a port of their own", c.Listen)
	}
	if c.RequestBodyTimeout.Duration < 0 || c.Import.BodyTimeout.Duration < 0 {
		bad("requestBodyTimeout", "must not be negative")
	}
	if c.Import.MaxBodyBytes < 1024 || c.Import.MaxStoredBytesPerUser < 1024 {
		bad("import", "maxBodyBytes and maxStoredBytesPerUser must be at least 1024")
	}
	if c.MaxRequestBodyBytes < 1024 {
		bad("maxRequestBodyBytes", "must be at least 1024")
	}
	if len(c.Providers) == 0 {
		bad("providers", "at least one provider is required")
	}
	aliases := map[string]bool{}
	kinds := map[string]string{} // alias → kind
	providerNames := map[string]bool{}
	for i, p := range c.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		if p.Name == "" {
			bad(path+".name", "required")
		} else if providerNames[p.Name] {
			bad(path+".name", "duplicate provider %q", p.Name)
		}
		providerNames[p.Name] = true
		if p.Type != ProviderAnthropic && p.Type != ProviderOpenAICompatible {
			bad(path+".type", "must be Anthropic or OpenAICompatible, got %q", p.Type)
		}
		if !urlPattern.MatchString(p.BaseURL) {
			bad(path+".baseURL", "must be an http:// or https:// URL, got %q", p.BaseURL)
		}
		if len(p.Models) == 0 {
			bad(path+".models", "at least one model is required")
		}
		seen := map[string]bool{}
		for j, m := range p.Models {
			mp := fmt.Sprintf("%s.models[%d]", path, j)
			if m.Name == "" {
				bad(mp+".name", "required")
			}
			if seen[m.Name] {
				bad(mp+".name", "duplicate model %q in this provider", m.Name)
			}
			seen[m.Name] = true
			aliases[m.Name] = true
			if m.ID == "" {
				bad(mp+".id", "required")
			}
			if k, ok := kinds[m.Name]; ok && k != m.Kind {
				bad(mp+".kind", "model %q is %s here and %s at another provider: an alias is one kind of model", m.Name, m.Kind, k)
			} else if !ok {
				kinds[m.Name] = m.Kind
			}
			switch m.Kind {
			case KindChat:
				validateChatModel(bad, mp, &m)
			case KindImage:
				validateImageModel(bad, mp, &m)
			default:
				bad(mp+".kind", "must be Chat or Image, got %q", m.Kind)
			}
		}
	}
	if c.DefaultModel == "" {
		bad("defaultModel", "required")
	} else if len(c.Providers) > 0 && !aliases[c.DefaultModel] {
		bad("defaultModel", "%q is not a model of any provider", c.DefaultModel)
	} else if kinds[c.DefaultModel] == KindImage {
		bad("defaultModel", "%q is an Image model; the default model answers messages: name a Chat model", c.DefaultModel)
	}
	for i, f := range c.Fallbacks {
		path := fmt.Sprintf("fallbacks[%d]", i)
		if !aliases[f.Model] {
			bad(path+".model", "%q is not a model of any provider", f.Model)
		}
		for j, to := range f.To {
			switch {
			case !aliases[to]:
				bad(fmt.Sprintf("%s.to[%d]", path, j), "%q is not a model of any provider", to)
			case aliases[f.Model] && kinds[to] != kinds[f.Model]:
				bad(fmt.Sprintf("%s.to[%d]", path, j), "%q is a %s model and %q a %s model: a fallback makes what the model it stands in for makes", to, kinds[to], f.Model, kinds[f.Model])
			}
		}
	}
	for i, r := range c.Failover.RetryOn {
		switch r {
		case FailureTimeout, FailureServerError, FailureRateLimited, FailureOverloaded, FailureConnectionError:
		default:
			bad(fmt.Sprintf("failover.retryOn[%d]", i), "unknown failure class %q", r)
		}
	}
	if c.Failover.FailureThreshold < 1 {
		bad("failover.failureThreshold", "must be at least 1")
	}
	if c.Auth.TokenFile == "" {
		bad("auth.tokenFile", "required: every request must carry the gateway token")
	}
	if !headerPattern.MatchString(c.Auth.EmailHeader) {
		bad("auth.emailHeader", "%q is not a header name", c.Auth.EmailHeader)
	}
	if c.Identity.Upstream != IdentityEmail && c.Identity.Upstream != IdentityHash {
		bad("identity.upstream", "must be Email or Hash, got %q", c.Identity.Upstream)
	}
	switch c.Identity.MetricsEndUser {
	case IdentityEmail, IdentityHash, IdentityNone:
	default:
		bad("identity.metricsEndUser", "must be Email, Hash or None, got %q", c.Identity.MetricsEndUser)
	}
	if (c.Identity.Upstream == IdentityHash || c.Identity.MetricsEndUser == IdentityHash) && c.Keys.MasterKeyFile == "" {
		bad("keys.masterKeyFile", "required when identities are hashed")
	}
	emails := map[string]bool{}
	for i, u := range c.Users {
		path := fmt.Sprintf("users[%d]", i)
		if !emailPattern.MatchString(u.Email) {
			bad(path+".email", "%q is not a lower-case email address", u.Email)
		}
		if emails[u.Email] {
			bad(path+".email", "duplicate user %q", u.Email)
		}
		emails[u.Email] = true
		if u.Role != RoleAdmin && u.Role != RoleUser {
			bad(path+".role", "must be Admin or User, got %q", u.Role)
		}
		validUSD(bad, path+".dailySoftUSD", u.DailySoftUSD)
		validUSD(bad, path+".dailyHardUSD", u.DailyHardUSD)
	}
	switch c.Sessions.Store.Type {
	case StoreEmbedded:
		if c.Sessions.Store.Path == "" {
			bad("sessions.store.path", "required for the Embedded store")
		}
	case StorePostgres:
		if c.Sessions.Store.DSNFile == "" {
			bad("sessions.store.dsnFile", "required for the Postgres store")
		}
	default:
		bad("sessions.store.type", "must be Embedded or Postgres, got %q", c.Sessions.Store.Type)
	}
	for i, r := range c.Routing.Rules {
		path := fmt.Sprintf("routing.rules[%d]", i)
		if !aliases[r.Model] {
			bad(path+".model", "%q is not a model of any provider", r.Model)
		} else if kinds[r.Model] == KindImage {
			bad(path+".model", "%q is an Image model; auto routes messages to Chat models", r.Model)
		}
		if r.MessageMatches != "" {
			if _, err := regexp.Compile(r.MessageMatches); err != nil {
				bad(path+".messageMatches", "%v", err)
			}
		}
	}
	validUSD(bad, "quotas.dailySoftUSD", c.Quotas.DailySoftUSD)
	validUSD(bad, "quotas.dailyHardUSD", c.Quotas.DailyHardUSD)
	if _, err := time.LoadLocation(c.Quotas.TimeZone); err != nil {
		bad("quotas.timeZone", "unknown time zone %q", c.Quotas.TimeZone)
	}
	return errors.Join(errs...)
}

func validateChatModel(bad func(string, string, ...any), path string, m *Model) {
	for field, v := range map[string]string{
		"inputPerMTok": m.Pricing.InputPerMTok, "outputPerMTok": m.Pricing.OutputPerMTok,
		"cacheReadPerMTok": m.Pricing.CacheReadPerMTok, "cacheWritePerMTok": m.Pricing.CacheWritePerMTok,
	} {
		if _, err := ParseUSD(v); err != nil {
			bad(path+".pricing."+field, "%v", err)
		}
	}
	if len(m.Pricing.PerImage) > 0 {
		bad(path+".pricing.perImage", "prices pictures, and this is a Chat model")
	}
	seen := map[string]bool{}
	for i, in := range m.Input {
		if in != InputText && in != InputImage {
			bad(fmt.Sprintf("%s.input[%d]", path, i), "must be Text or Image, got %q", in)
		}
		if seen[in] {
			bad(fmt.Sprintf("%s.input[%d]", path, i), "duplicate %q", in)
		}
		seen[in] = true
	}
	if !seen[InputText] {
		bad(path+".input", "must include Text")
	}
}

func validateImageModel(bad func(string, string, ...any), path string, m *Model) {
	p := m.Pricing
	if p.InputPerMTok+p.OutputPerMTok+p.CacheReadPerMTok+p.CacheWritePerMTok != "" {
		bad(path+".pricing", "an Image model is priced per picture only, not per token")
	}
	if len(m.Input) > 0 {
		bad(path+".input", "is for Chat models")
	}
	if len(p.PerImage) == 0 {
		bad(path+".pricing.perImage", "required for an Image model")
	}
	seen := map[ImagePrice]bool{}
	for i, ip := range p.PerImage {
		ipath := fmt.Sprintf("%s.pricing.perImage[%d]", path, i)
		if _, _, err := ParseImageSize(ip.Size); err != nil {
			bad(ipath+".size", "%v", err)
		}
		if !qualityPattern.MatchString(ip.Quality) {
			bad(ipath+".quality", "%q is not a lower-case word such as standard", ip.Quality)
		}
		if _, err := ParseUSD(ip.USD); err != nil {
			bad(ipath+".usd", "%v", err)
		}
		key := ImagePrice{Size: ip.Size, Quality: ip.Quality}
		if seen[key] {
			bad(ipath, "duplicate price for %s at %s quality", ip.Size, ip.Quality)
		}
		seen[key] = true
	}
}

func validUSD(bad func(string, string, ...any), path, v string) {
	if v == "" {
		return
	}
	if _, err := ParseUSD(v); err != nil {
		bad(path, "%v", err)
	}
}

var (
	urlPattern     = regexp.MustCompile(`^https?://[^\s/]+`)
	headerPattern  = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	qualityPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	emailPattern   = regexp.MustCompile(`^[a-z0-9.!#$%&*+/=?^_{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
)
