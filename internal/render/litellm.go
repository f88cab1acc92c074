package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// LiteLLMConfigYAML renders a LiteLLM proxy config.yaml for an
// OpenAICompatible provider with spec.liteLLM, in the layout LiteLLM's proxy
// documents (docs.litellm.ai/docs/proxy/configs):
//
//	model_list:
//	  - model_name: nova-micro
//	    litellm_params:
//	      model: bedrock/us.amazon.nova-micro-v1:0
//	      aws_region_name: us-east-1
//	litellm_settings:
//	  drop_params: true
//	  telemetry: false
//	  success_callback: ["prometheus"]
//
// litellm_settings keys set attributes of the litellm module, so telemetry:
// false is litellm.telemetry = False, LiteLLM's documented opt-out.
// Within litellm_params, model comes first and the other keys follow sorted.
// The CRD holds params as strings; a value that reads as a number or as
// true/false is written bare so LiteLLM gets the int, float or bool it
// expects (rpm: 6, timeout: 30), and every other value that YAML could
// misread is double-quoted.
func LiteLLMConfigYAML(mp *v1alpha1.ModelProvider) ([]byte, error) {
	spec := mp.Spec.LiteLLM
	if spec == nil {
		return nil, fmt.Errorf("ModelProvider %s has no liteLLM section", mp.Name)
	}
	if mp.Spec.Type != v1alpha1.ProviderOpenAICompatible {
		return nil, fmt.Errorf("ModelProvider %s: liteLLM needs type %s, not %s", mp.Name, v1alpha1.ProviderOpenAICompatible, mp.Spec.Type)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# LiteLLM proxy config rendered by %s from ModelProvider %s/%s. Edits are overwritten.\n", ManagedBy, mp.Namespace, mp.Name)
	b.WriteString("model_list:\n")
	for _, m := range spec.Models {
		if _, ok := m.Params["model"]; !ok {
			return nil, fmt.Errorf("ModelProvider %s: liteLLM model %q has no params.model", mp.Name, m.Name)
		}
		fmt.Fprintf(&b, "  - model_name: %s\n", yamlString(m.Name))
		b.WriteString("    litellm_params:\n")
		for _, k := range paramKeys(m.Params) {
			fmt.Fprintf(&b, "      %s: %s\n", yamlKey(k), yamlParam(m.Params[k]))
		}
	}
	dropParams := spec.Settings.DropParams == nil || *spec.Settings.DropParams
	b.WriteString("litellm_settings:\n")
	fmt.Fprintf(&b, "  drop_params: %t\n", dropParams)
	b.WriteString("  telemetry: false\n")
	if len(spec.Settings.SuccessCallback) > 0 {
		quoted := make([]string, 0, len(spec.Settings.SuccessCallback))
		for _, c := range spec.Settings.SuccessCallback {
			quoted = append(quoted, jsonString(c))
		}
		fmt.Fprintf(&b, "  success_callback: [%s]\n", strings.Join(quoted, ", "))
	}
	return b.Bytes(), nil
}

// LiteLLMConfigMap is the ConfigMap with key config.yaml that a LiteLLM
// deployment mounts.
func LiteLLMConfigMap(mp *v1alpha1.ModelProvider) (*corev1.ConfigMap, error) {
	b, err := LiteLLMConfigYAML(mp)
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      LiteLLMConfigMapName(mp),
			Namespace: mp.Namespace,
			Labels: map[string]string{
				LabelName:      AppName,
				LabelInstance:  mp.Name,
				LabelComponent: ComponentLiteLLMConfig,
				LabelManagedBy: ManagedBy,
			},
		},
		Data: map[string]string{LiteLLMConfigKey: string(b)},
	}, nil
}

func paramKeys(params map[string]string) []string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "model" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return append([]string{"model"}, keys...)
}

var (
	plainKey    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	plainString = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./:@+-]*$`)
	yamlNumber  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	// Words YAML 1.1 (PyYAML, which LiteLLM uses) reads as booleans or null.
	yaml11Words = map[string]bool{
		"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
		"true": true, "false": true, "null": true,
	}
)

func yamlKey(k string) string {
	if plainKey.MatchString(k) && !yaml11Words[strings.ToLower(k)] {
		return k
	}
	return jsonString(k)
}

// yamlString writes s so that YAML reads back exactly the string s.
func yamlString(s string) string {
	if plainString.MatchString(s) && !strings.HasSuffix(s, ":") && !yaml11Words[strings.ToLower(s)] {
		return s
	}
	return jsonString(s)
}

// yamlParam writes numbers and true/false bare (typed), anything else as a string.
func yamlParam(s string) string {
	if yamlNumber.MatchString(s) || s == "true" || s == "false" {
		return s
	}
	return yamlString(s)
}

// jsonString is s as a JSON string, which is also a YAML double-quoted scalar.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
