package render

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
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
// The document is built as a YAML node tree and written by the YAML encoder,
// which does all quoting and escaping; this code only chooses each scalar's
// type and style. The CRD holds params as strings; a value that reads as a
// number or as true/false is written bare so LiteLLM gets the int, float or
// bool it expects (rpm: 6, timeout: 30), and every other value that a YAML
// 1.1 reader (PyYAML, which LiteLLM uses) could misread is double-quoted.
func LiteLLMConfigYAML(mp *v1alpha1.ModelProvider) ([]byte, error) {
	spec := mp.Spec.LiteLLM
	if spec == nil {
		return nil, fmt.Errorf("ModelProvider %s has no liteLLM section", mp.Name)
	}
	if mp.Spec.Type != v1alpha1.ProviderOpenAICompatible {
		return nil, fmt.Errorf("ModelProvider %s: liteLLM needs type %s, not %s", mp.Name, v1alpha1.ProviderOpenAICompatible, mp.Spec.Type)
	}
	models := &yaml.Node{Kind: yaml.SequenceNode}
	for _, m := range spec.Models {
		if _, ok := m.Params["model"]; !ok {
			return nil, fmt.Errorf("ModelProvider %s: liteLLM model %q has no params.model", mp.Name, m.Name)
		}
		params := mapping()
		for _, k := range paramKeys(m.Params) {
			params.Content = append(params.Content, keyNode(k), paramNode(m.Params[k]))
		}
		models.Content = append(models.Content, mapping(
			keyNode("model_name"), stringNode(m.Name),
			keyNode("litellm_params"), params,
		))
	}
	dropParams := spec.Settings.DropParams == nil || *spec.Settings.DropParams
	settings := mapping(
		keyNode("drop_params"), boolNode(dropParams),
		keyNode("telemetry"), boolNode(false),
	)
	if len(spec.Settings.SuccessCallback) > 0 {
		callbacks := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, c := range spec.Settings.SuccessCallback {
			callbacks.Content = append(callbacks.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: c, Style: yaml.DoubleQuotedStyle})
		}
		settings.Content = append(settings.Content, keyNode("success_callback"), callbacks)
	}
	root := mapping(
		keyNode("model_list"), models,
		keyNode("litellm_settings"), settings,
	)
	// On the first key rather than the document, so no blank line follows it.
	root.Content[0].HeadComment = fmt.Sprintf("# LiteLLM proxy config rendered by %s from ModelProvider %s/%s. Edits are overwritten.", ManagedBy, mp.Namespace, mp.Name)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding the LiteLLM config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding the LiteLLM config: %w", err)
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

func mapping(pairs ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: pairs}
}

func boolNode(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}
}

// keyNode is a mapping key: plain when it is an identifier no YAML reader
// takes for anything but a string, else double-quoted.
func keyNode(k string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
	if !plainKey.MatchString(k) || yaml11Words[strings.ToLower(k)] {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// stringNode is s as a string for YAML 1.1 and 1.2 readers alike: plain only
// when it starts with a letter, "_" or "/" and holds nothing a reader could
// take for a number, date, bool, null, key or comment; else double-quoted.
func stringNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if !plainString.MatchString(s) || strings.HasSuffix(s, ":") || yaml11Words[strings.ToLower(s)] {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// paramNode types numbers and true/false; anything else is a string.
func paramNode(s string) *yaml.Node {
	switch {
	case s == "true" || s == "false":
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: s}
	case yamlNumber.MatchString(s) && strings.Contains(s, "."):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
	case yamlNumber.MatchString(s):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s}
	}
	return stringNode(s)
}
