package render

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// The LiteLLM proxy the operator runs for spec.liteLLM.deployment.
const (
	ComponentLiteLLM     = "litellm"
	LiteLLMAppName       = "litellm"
	LiteLLMContainerName = "litellm"
	LiteLLMPort          = int32(4000)
	LiteLLMPortName      = "http"
	// LiteLLMConfigDir is where config.yaml is mounted.
	LiteLLMConfigDir = "/etc/litellm"
	// LiteLLMMasterKeyEnv is LiteLLM's master key: the key the gateway sends
	// (the provider's apiKeySecretRef), so only holders of it get through.
	LiteLLMMasterKeyEnv = "LITELLM_MASTER_KEY"
	// AnnotationEnvSecretVersion on LiteLLM's pod template is the
	// resourceVersion of its env Secret: LiteLLM reads its environment once,
	// so new AWS credentials roll the pods.
	AnnotationEnvSecretVersion = "chatgateway.dev/env-secret-version"
	// DefaultLiteLLMImage is the image when spec.liteLLM.deployment.image is empty.
	DefaultLiteLLMImage = "ghcr.io/berriai/litellm:main-stable"
)

// LiteLLMName names the LiteLLM Deployment and Service of a provider.
func LiteLLMName(mp *v1alpha1.ModelProvider) string { return mp.Name + "-litellm" }

// LiteLLMURL is where the gateway reaches the LiteLLM Service from the
// provider's namespace.
func LiteLLMURL(mp *v1alpha1.ModelProvider) string {
	return fmt.Sprintf("http://%s:%d", LiteLLMName(mp), LiteLLMPort)
}

func liteLLMLabels(mp *v1alpha1.ModelProvider) map[string]string {
	l := liteLLMSelector(mp)
	l[LabelManagedBy] = ManagedBy
	return l
}

// liteLLMSelector selects the LiteLLM pods; immutable on a Deployment.
func liteLLMSelector(mp *v1alpha1.ModelProvider) map[string]string {
	return map[string]string{LabelName: LiteLLMAppName, LabelInstance: mp.Name, LabelComponent: ComponentLiteLLM}
}

// LiteLLMDeployment runs the LiteLLM proxy with the rendered config.yaml
// mounted. LiteLLM does not reload its config, so a hash of it is a
// pod-template annotation: a config change rolls the pods and an unchanged
// one writes nothing. envSecretVersion is the resourceVersion of
// deployment.envSecretRef ("" without one). Pods roll one at a time and an
// old one stops only when a new one is ready.
func LiteLLMDeployment(mp *v1alpha1.ModelProvider, envSecretVersion string) (*appsv1.Deployment, error) {
	if mp.Spec.LiteLLM == nil || mp.Spec.LiteLLM.Deployment == nil {
		return nil, fmt.Errorf("ModelProvider %s has no liteLLM.deployment", mp.Name)
	}
	spec := mp.Spec.LiteLLM.Deployment
	cfg, err := LiteLLMConfigYAML(mp)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{AnnotationConfigHash: Hash(cfg)}
	container := corev1.Container{
		Name:  LiteLLMContainerName,
		Image: orDefault(spec.Image, DefaultLiteLLMImage),
		Args:  []string{"--config", LiteLLMConfigDir + "/" + LiteLLMConfigKey, "--port", fmt.Sprint(LiteLLMPort)},
		Ports: []corev1.ContainerPort{{Name: LiteLLMPortName, ContainerPort: LiteLLMPort, Protocol: corev1.ProtocolTCP}},
		// LiteLLM's documented probes: liveliness answers once the server
		// runs, readiness once it can serve.
		LivenessProbe:  httpProbe("/health/liveliness", LiteLLMPortName, 10),
		ReadinessProbe: httpProbe("/health/readiness", LiteLLMPortName, 5),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: volumeConfig, MountPath: LiteLLMConfigDir, ReadOnly: true}},
	}
	if ref := mp.Spec.APIKeySecretRef; ref != nil {
		container.Env = []corev1.EnvVar{{Name: LiteLLMMasterKeyEnv, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key},
		}}}
	}
	if ref := spec.EnvSecretRef; ref != nil {
		container.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name},
		}}}
		annotations[AnnotationEnvSecretVersion] = envSecretVersion
	}
	if spec.Resources != nil {
		container.Resources = *spec.Resources.DeepCopy()
	}
	replicas := int32(1)
	if spec.Replicas != nil {
		replicas = *spec.Replicas
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: LiteLLMName(mp), Namespace: mp.Namespace, Labels: liteLLMLabels(mp)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: liteLLMSelector(mp)},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: liteLLMLabels(mp), Annotations: annotations},
				Spec: corev1.PodSpec{
					// LiteLLM never calls the Kubernetes API.
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
					Volumes: []corev1.Volume{{Name: volumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: LiteLLMConfigMapName(mp)},
					}}}},
				},
			},
		},
	}, nil
}

// LiteLLMService is the LiteLLM proxy's Service, at LiteLLMURL.
func LiteLLMService(mp *v1alpha1.ModelProvider) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: LiteLLMName(mp), Namespace: mp.Namespace, Labels: liteLLMLabels(mp)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: liteLLMSelector(mp),
			Ports: []corev1.ServicePort{{
				Name: LiteLLMPortName, Port: LiteLLMPort, TargetPort: intstr.FromString(LiteLLMPortName), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}
