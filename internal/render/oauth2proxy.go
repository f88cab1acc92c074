package render

import (
	"bytes"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// How the OAuth2 Proxy sidecar (v7.15) is configured, and why.
//
// The sidecar must add a header carrying the gateway token to every request
// it forwards. The only way OAuth2 Proxy adds a static request header is the
// alpha config's injectRequestHeaders, and with --alpha-config the legacy
// upstream, header and provider flags (--upstream, --http-address,
// --pass-user-headers, --set-xauthrequest, --skip-auth-strip-headers,
// --provider, --client-id, --client-secret and their OAUTH2_PROXY_* env
// vars) are rejected or ignored, so those settings live in the alpha config:
//
//   - server.bindAddress 0.0.0.0:4180, one upstream http://127.0.0.1:8080/;
//   - injectRequestHeaders: the email header (spec.auth.emailHeader) and
//     X-Forwarded-User from the session, and X-Gateway-Token from
//     secretSource.fromFile, the token Secret mounted into the sidecar. The
//     alpha config therefore holds a path, never the token, and lives in a
//     ConfigMap. OAuth2 Proxy reads the file once at start, which is why the
//     token generation is a pod-template annotation: each rotation rolls the
//     pods, and the previous token stays valid for the grace period while
//     they roll;
//   - every injected header has preserveRequestValue: false, so OAuth2 Proxy
//     strips whatever a client sent under those names before injecting its
//     own: a signed-in user cannot claim another email or bring a token;
//   - the OAuth client secret comes from providers[].clientSecretFile (the
//     user's Secret key mounted as a file), as the env var is ignored under
//     alpha config. The cookie secret is a core option and comes from
//     OAUTH2_PROXY_COOKIE_SECRET, valueFrom the user's Secret.
//
// Access is limited by --authenticated-emails-file alone. --email-domain is
// deliberately absent: OAuth2 Proxy admits every address when it is "*",
// whatever the emails file says.

// OAuth2 Proxy sidecar file locations.
var (
	OAuth2ProxyConfigPath = path.Join(OAuth2ProxyConfigDir, OAuth2ProxyConfigKey)
	OAuth2ProxyEmailsPath = path.Join(OAuth2ProxyConfigDir, AuthenticatedEmailsKey)
	OAuth2ProxyTokenPath  = path.Join(OAuth2ProxyTokenDir, gc.TokenKey)
	OAuth2ProxyClientPath = path.Join(OAuth2ProxyClientDir, OAuth2ProxyClientSecret)
)

// oauth2ProxyAPIRoutes get a 401 instead of a redirect to the identity
// provider when the session is missing, which API clients and the chat
// page's fetch calls can act on.
const oauth2ProxyAPIRoutes = "^/(api|v1)/"

// oauth2ProxyKeyRoutes are let through without a session, so that a
// program holding a personal API key (and no cookie) reaches the gateway,
// which checks the key. OAuth2 Proxy still validates a session cookie that
// comes on these routes and then injects the person's email as everywhere
// else (its "skipped route" behaviour); a request with neither is refused
// by the gateway (401). The page and its assets stay behind the sign-in.
const oauth2ProxyKeyRoutes = oauth2ProxyAPIRoutes

// upstreamTimeoutSlack is added to the gateway's request timeout to get the
// sidecar's response-header timeout (OAuth2 Proxy's default, 30s, would cut
// long non-streaming replies).
const upstreamTimeoutSlack = 30

// AuthenticatedEmails is the OAuth2 Proxy --authenticated-emails-file: one
// lower-case address a line, sorted, each line ending in a newline. A nil
// allowlist gives an empty file: nobody gets in.
func AuthenticatedEmails(al *v1alpha1.UserAllowlist) []byte {
	if al == nil {
		return []byte{}
	}
	emails := make([]string, 0, len(al.Spec.Users))
	for _, u := range al.Spec.Users {
		// The CRD admits only canonical addresses; one that is not (a
		// resource from before that rule) is left out rather than trimmed
		// or folded into someone else's.
		if e, err := gc.CanonicalEmail(u.Email); err == nil && gc.ValidEmail(e) {
			emails = append(emails, e)
		}
	}
	slices.Sort(emails)
	emails = slices.Compact(emails)
	var b bytes.Buffer
	for _, e := range emails {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// The alpha config, in OAuth2 Proxy's field names (pkg/apis/options, v7.15).
type oauth2ProxyAlphaConfig struct {
	Server               oauth2ProxyServer     `json:"server"`
	UpstreamConfig       oauth2ProxyUpstreams  `json:"upstreamConfig"`
	InjectRequestHeaders []oauth2ProxyHeader   `json:"injectRequestHeaders"`
	Providers            []oauth2ProxyProvider `json:"providers"`
}

type oauth2ProxyServer struct {
	BindAddress string `json:"bindAddress"`
}

type oauth2ProxyUpstreams struct {
	Upstreams []oauth2ProxyUpstream `json:"upstreams"`
}

type oauth2ProxyUpstream struct {
	ID              string `json:"id"`
	Path            string `json:"path"`
	URI             string `json:"uri"`
	PassHostHeader  bool   `json:"passHostHeader"`
	ProxyWebSockets bool   `json:"proxyWebSockets"`
	Timeout         string `json:"timeout"`
}

type oauth2ProxyHeader struct {
	Name                 string             `json:"name"`
	PreserveRequestValue bool               `json:"preserveRequestValue"`
	Values               []oauth2ProxyValue `json:"values"`
}

type oauth2ProxyValue struct {
	ClaimSource  *oauth2ProxyClaim  `json:"claimSource,omitempty"`
	SecretSource *oauth2ProxySecret `json:"secretSource,omitempty"`
}

type oauth2ProxyClaim struct {
	Claim string `json:"claim"`
}

type oauth2ProxySecret struct {
	FromFile string `json:"fromFile"`
}

type oauth2ProxyProvider struct {
	ID               string           `json:"id"`
	Provider         string           `json:"provider"`
	ClientID         string           `json:"clientID"`
	ClientSecretFile string           `json:"clientSecretFile"`
	OIDCConfig       *oauth2ProxyOIDC `json:"oidcConfig,omitempty"`
}

type oauth2ProxyOIDC struct {
	IssuerURL string `json:"issuerURL"`
}

// OAuth2ProxyConfigYAML is the sidecar's alpha config (see the comment at the
// top of this file). It holds file paths, never a secret.
func OAuth2ProxyConfigYAML(in Inputs) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	spec := oauth2Proxy(in.Gateway)
	if spec == nil {
		return nil, fmt.Errorf("ChatGateway %s has no enabled oauth2Proxy", in.Gateway.Name)
	}
	providerType := orDefault(spec.Provider, defaultOAuth2Provider)
	p := oauth2ProxyProvider{
		ID:               providerType,
		Provider:         providerType,
		ClientID:         spec.ClientID,
		ClientSecretFile: OAuth2ProxyClientPath,
	}
	if spec.OIDCIssuerURL != "" {
		p.OIDCConfig = &oauth2ProxyOIDC{IssuerURL: spec.OIDCIssuerURL}
	}
	timeout := requestTimeout(in.Gateway).Seconds() + upstreamTimeoutSlack
	claim := func(name, claim string) oauth2ProxyHeader {
		return oauth2ProxyHeader{Name: name, Values: []oauth2ProxyValue{{ClaimSource: &oauth2ProxyClaim{Claim: claim}}}}
	}
	headers := []oauth2ProxyHeader{
		claim(emailHeader(in.Gateway), "email"),
		{Name: GatewayTokenHeader, Values: []oauth2ProxyValue{{SecretSource: &oauth2ProxySecret{FromFile: OAuth2ProxyTokenPath}}}},
	}
	if !strings.EqualFold(emailHeader(in.Gateway), "X-Forwarded-User") {
		headers = append(headers, claim("X-Forwarded-User", "user"))
	}
	c := oauth2ProxyAlphaConfig{
		Server: oauth2ProxyServer{BindAddress: net.JoinHostPort("0.0.0.0", strconv.Itoa(int(OAuth2ProxyPort)))},
		UpstreamConfig: oauth2ProxyUpstreams{Upstreams: []oauth2ProxyUpstream{{
			ID:              ComponentGateway,
			Path:            "/",
			URI:             fmt.Sprintf("http://127.0.0.1:%d/", GatewayPort),
			PassHostHeader:  true,
			ProxyWebSockets: false,
			Timeout:         strconv.FormatFloat(timeout, 'f', -1, 64) + "s",
		}}},
		InjectRequestHeaders: headers,
		Providers:            []oauth2ProxyProvider{p},
	}
	b, err := marshalYAML(c)
	if err != nil {
		return nil, fmt.Errorf("marshalling OAuth2 Proxy config: %w", err)
	}
	header := fmt.Sprintf("# OAuth2 Proxy alpha config rendered by %s for ChatGateway %s/%s. Edits are overwritten.\n",
		ManagedBy, in.Gateway.Namespace, in.Gateway.Name)
	return append([]byte(header), b...), nil
}

// OAuth2ProxyArgs are the sidecar's command-line flags: the core options
// that stay flags under alpha config.
func OAuth2ProxyArgs(in Inputs) []string {
	args := []string{
		"--alpha-config=" + OAuth2ProxyConfigPath,
		"--authenticated-emails-file=" + OAuth2ProxyEmailsPath,
		"--skip-provider-button=true",
		"--api-route=" + oauth2ProxyAPIRoutes,
		"--skip-auth-route=" + oauth2ProxyKeyRoutes,
		"--silence-ping-logging=true",
		// The session cookie is not sent with another site's POSTs, forms
		// and fetches (the gateway also refuses them: see its surface.go).
		"--cookie-samesite=lax",
	}
	spec := oauth2Proxy(in.Gateway)
	// X-Forwarded-* are believed from the listed proxies only; with none
	// listed, from nobody (OAuth2 Proxy's --reverse-proxy alone would
	// believe every client).
	if spec != nil && len(spec.TrustedProxies) > 0 {
		args = append(args, "--reverse-proxy=true")
		for _, c := range spec.TrustedProxies {
			args = append(args, "--trusted-proxy-ip="+c)
		}
	} else {
		args = append(args, "--reverse-proxy=false")
	}
	if spec != nil && spec.RedirectURL != "" {
		args = append(args, "--redirect-url="+spec.RedirectURL)
	}
	return args
}

// OAuth2ProxyContainer is the sidecar container, or nil when the sidecar is
// disabled. Its volumes are in OAuth2ProxyVolumes.
func OAuth2ProxyContainer(in Inputs) *corev1.Container {
	spec := oauth2Proxy(in.Gateway)
	if spec == nil {
		return nil
	}
	c := &corev1.Container{
		Name:            OAuth2ProxyContainerName,
		Image:           orDefault(spec.Image, DefaultOAuth2ProxyImage),
		Args:            OAuth2ProxyArgs(in),
		Ports:           []corev1.ContainerPort{{Name: OAuth2ProxyPortName, ContainerPort: OAuth2ProxyPort, Protocol: corev1.ProtocolTCP}},
		LivenessProbe:   httpProbe("/ping", OAuth2ProxyPortName, 10),
		ReadinessProbe:  httpProbe("/ready", OAuth2ProxyPortName, 5),
		SecurityContext: containerSecurityContext(),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: volumeOAuth2ProxyConfig, MountPath: OAuth2ProxyConfigDir, ReadOnly: true},
			{Name: volumeToken, MountPath: OAuth2ProxyTokenDir, ReadOnly: true},
			{Name: volumeOAuth2ProxyClient, MountPath: OAuth2ProxyClientDir, ReadOnly: true},
		},
	}
	if ref := spec.CookieSecretRef; ref != nil {
		c.Env = []corev1.EnvVar{{
			Name: "OAUTH2_PROXY_COOKIE_SECRET",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name},
				Key:                  ref.Key,
			}},
		}}
	}
	return c
}

// OAuth2ProxyVolumes are the sidecar's own volumes (it also mounts the
// token volume the gateway has), or nil when the sidecar is disabled.
func OAuth2ProxyVolumes(in Inputs) []corev1.Volume {
	spec := oauth2Proxy(in.Gateway)
	if spec == nil {
		return nil
	}
	vols := []corev1.Volume{{
		Name: volumeOAuth2ProxyConfig,
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: OAuth2ProxyConfigMapName(in.Gateway)},
		}},
	}}
	if ref := spec.ClientSecretRef; ref != nil {
		vols = append(vols, secretKeyVolume(volumeOAuth2ProxyClient, ref, OAuth2ProxyClientSecret))
	}
	return vols
}

// OAuth2ProxyConfigMap holds OAuth2 Proxy's files: the authenticated-emails
// file always (an OAuth2 Proxy outside the pod may mount it too) and the
// alpha config when the sidecar is enabled.
func OAuth2ProxyConfigMap(in Inputs) (*corev1.ConfigMap, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	data := map[string]string{AuthenticatedEmailsKey: string(AuthenticatedEmails(in.Allowlist))}
	if oauth2Proxy(in.Gateway) != nil {
		b, err := OAuth2ProxyConfigYAML(in)
		if err != nil {
			return nil, err
		}
		data[OAuth2ProxyConfigKey] = string(b)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(in.Gateway, OAuth2ProxyConfigMapName(in.Gateway), ComponentOAuth2Proxy),
		Data:       data,
	}, nil
}

func httpProbe(path, port string, period int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString(port), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds:    period,
		TimeoutSeconds:   2,
		FailureThreshold: 3,
		SuccessThreshold: 1,
	}
}
