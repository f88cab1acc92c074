package render

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// liteLLMProvider is the family's LiteLLM provider, run by the operator.
func liteLLMProvider(t *testing.T) *v1alpha1.ModelProvider {
	t.Helper()
	in := family(t)
	for i := range in.Providers {
		if mp := &in.Providers[i]; mp.Spec.LiteLLM != nil {
			replicas := int32(2)
			mp.Spec.LiteLLM.Deployment = &v1alpha1.LiteLLMDeploymentSpec{
				Image:        "ghcr.io/berriai/litellm:main-v1.0.0-stable",
				Replicas:     &replicas,
				Resources:    &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
				EnvSecretRef: &v1alpha1.LocalRef{Name: "aws-bedrock"},
			}
			return mp
		}
	}
	t.Fatal("the family has no LiteLLM provider")
	return nil
}

func TestLiteLLMGolden(t *testing.T) {
	mp := liteLLMProvider(t)
	golden(t, "litellm-deployment.yaml", mustBytes(toYAML(LiteLLMDeployment(mp, "4711"))))
	golden(t, "litellm-service.yaml", mustBytes(marshalYAML(LiteLLMService(mp))))
}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestLiteLLMRolls: LiteLLM reads its config and environment once, so a
// change to either changes the pod template, and nothing else does.
func TestLiteLLMRolls(t *testing.T) {
	hashOf := func(mp *v1alpha1.ModelProvider, envVersion string) map[string]string {
		d, err := LiteLLMDeployment(mp, envVersion)
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations
	}
	base := hashOf(liteLLMProvider(t), "1")
	if again := hashOf(liteLLMProvider(t), "1"); again[AnnotationConfigHash] != base[AnnotationConfigHash] {
		t.Fatal("the same inputs must render the same pod template")
	}
	mp := liteLLMProvider(t)
	mp.Spec.LiteLLM.Models[0].Params["aws_region_name"] = "eu-west-1"
	if hashOf(mp, "1")[AnnotationConfigHash] == base[AnnotationConfigHash] {
		t.Error("a config change must change the config hash")
	}
	if hashOf(liteLLMProvider(t), "2")[AnnotationEnvSecretVersion] == base[AnnotationEnvSecretVersion] {
		t.Error("new credentials must change the pod template")
	}
	mp = liteLLMProvider(t)
	mp.Spec.Models[0].Pricing.InputPerMTok = "9"
	if hashOf(mp, "1")[AnnotationConfigHash] != base[AnnotationConfigHash] {
		t.Error("a price (not in LiteLLM's config) must not roll LiteLLM")
	}
}

// TestLiteLLMDeploymentKeepsSecretsOut: the master key and AWS credentials
// reach LiteLLM by reference only.
func TestLiteLLMDeploymentKeepsSecretsOut(t *testing.T) {
	mp := liteLLMProvider(t)
	d, err := LiteLLMDeployment(mp, "1")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Env) != 1 || c.Env[0].Name != LiteLLMMasterKeyEnv || c.Env[0].ValueFrom.SecretKeyRef.Name != mp.Spec.APIKeySecretRef.Name || c.Env[0].Value != "" {
		t.Errorf("the master key must come from the provider's apiKeySecretRef: %+v", c.Env)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "aws-bedrock" {
		t.Errorf("the env Secret: %+v", c.EnvFrom)
	}
	if !strings.Contains(strings.Join(c.Args, " "), LiteLLMConfigDir+"/"+LiteLLMConfigKey) {
		t.Errorf("args %v do not name the mounted config", c.Args)
	}
	mp.Spec.LiteLLM.Deployment = nil
	if _, err := LiteLLMDeployment(mp, ""); err == nil {
		t.Error("no deployment spec must be an error")
	}
}
