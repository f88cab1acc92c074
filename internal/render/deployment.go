package render

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// GatewayCommand starts the gateway binary of the operator's image.
var GatewayCommand = []string{"/gateway"}

// NonRootUID is the user and group the pods run as (distroless "nonroot");
// fsGroup makes the store volume writable for it.
const NonRootUID int64 = 65532

// Volume names.
const (
	volumeConfig            = "config"
	volumeToken             = "token"
	volumeKeys              = "keys"
	volumeStore             = "store"
	volumeStoreDSN          = "store-dsn"
	volumeNotify            = "notify"
	volumeTmp               = "tmp"
	volumeOAuth2ProxyConfig = "oauth2-proxy-config"
	volumeOAuth2ProxyClient = "oauth2-proxy-client"
	volumeProviderPrefix    = "provider"
)

// secretMode lets the owner and the pod's fsGroup read a mounted Secret.
const secretMode int32 = 0o440

// ConfigHash is the pod-template annotation chatgateway.dev/config-hash: a
// hash of every rendered file the pods read at start, so any change rolls
// them and an unchanged render leaves the Deployment as it is.
func ConfigHash(in Inputs) (string, error) {
	cfg, err := GatewayConfigYAML(in)
	if err != nil {
		return "", err
	}
	parts := [][]byte{cfg, AuthenticatedEmails(in.Allowlist)}
	if oauth2Proxy(in.Gateway) != nil {
		o, err := OAuth2ProxyConfigYAML(in)
		if err != nil {
			return "", err
		}
		parts = append(parts, o)
	}
	return Hash(parts...), nil
}

// Deployment is the gateway Deployment: the gateway container and, when
// enabled, the OAuth2 Proxy sidecar in front of it. The config hash and the
// token generation are pod-template annotations, so the pods roll when
// either changes. An Embedded store is a file on a ReadWriteOnce volume, so
// the old pod must stop before the new one starts (Recreate); with Postgres
// the pods roll one at a time.
func Deployment(in Inputs) (*appsv1.Deployment, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	image := orDefault(in.Image, gw.Spec.Image)
	if image == "" {
		return nil, fmt.Errorf("no gateway image: set spec.image or give the renderer the operator's image")
	}
	providers, err := in.orderedProviders()
	if err != nil {
		return nil, err
	}
	hash, err := ConfigHash(in)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{AnnotationConfigHash: hash}
	if in.TokenGeneration != "" {
		annotations[AnnotationTokenGeneration] = in.TokenGeneration
	}

	volumes, mounts := gatewayVolumes(gw, providers)
	containers := []corev1.Container{gatewayContainer(gw, image, mounts)}
	if sidecar := OAuth2ProxyContainer(in); sidecar != nil {
		containers = append(containers, *sidecar)
		volumes = append(volumes, OAuth2ProxyVolumes(in)...)
	}

	strategy := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if storeType(gw) == v1alpha1.StorePostgres {
		strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				MaxSurge:       ptr.To(intstr.FromInt32(1)),
			},
		}
	}

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(gw, DeploymentName(gw), ComponentGateway),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas(gw)),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(gw)},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(gw, ComponentGateway), Annotations: annotations},
				Spec: corev1.PodSpec{
					// The gateway never calls the Kubernetes API.
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:        ptr.To(true),
						RunAsUser:           ptr.To(NonRootUID),
						RunAsGroup:          ptr.To(NonRootUID),
						FSGroup:             ptr.To(NonRootUID),
						FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
						SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: containers,
					Volumes:    volumes,
				},
			},
		},
	}, nil
}

func gatewayContainer(gw *v1alpha1.ChatGateway, image string, mounts []corev1.VolumeMount) corev1.Container {
	c := corev1.Container{
		Name:    GatewayContainerName,
		Image:   image,
		Command: GatewayCommand,
		Args:    []string{"--config", ConfigFilePath},
		Ports: []corev1.ContainerPort{
			{Name: GatewayPortName, ContainerPort: GatewayPort, Protocol: corev1.ProtocolTCP},
			{Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
		},
		LivenessProbe:   httpProbe("/healthz", GatewayPortName, 10),
		ReadinessProbe:  httpProbe("/readyz", GatewayPortName, 5),
		SecurityContext: containerSecurityContext(),
		VolumeMounts:    mounts,
	}
	if gw.Spec.Resources != nil {
		c.Resources = *gw.Spec.Resources.DeepCopy()
	}
	return c
}

// gatewayVolumes are the gateway container's volumes and mounts: config,
// token, master key, each provider's API key (that key only), the store,
// the Slack webhook and a writable /tmp.
func gatewayVolumes(gw *v1alpha1.ChatGateway, providers []v1alpha1.ModelProvider) ([]corev1.Volume, []corev1.VolumeMount) {
	volumes := []corev1.Volume{
		{Name: volumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(gw)},
		}}},
		{Name: volumeToken, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: TokenSecretName(gw), DefaultMode: ptr.To(secretMode),
		}}},
		{Name: volumeKeys, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: KeysSecretName(gw), DefaultMode: ptr.To(secretMode),
		}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: volumeConfig, MountPath: gc.ConfigDir, ReadOnly: true},
		{Name: volumeToken, MountPath: gc.TokenDir, ReadOnly: true},
		{Name: volumeKeys, MountPath: gc.KeysDir, ReadOnly: true},
	}
	for _, p := range providers {
		if p.Spec.APIKeySecretRef == nil {
			continue
		}
		name := volumeName(volumeProviderPrefix, p.Name)
		volumes = append(volumes, secretKeyVolume(name, p.Spec.APIKeySecretRef, gc.ProviderAPIKeyFileName))
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: ProviderKeyDir(p.Name), ReadOnly: true})
	}
	if storeType(gw) == v1alpha1.StorePostgres {
		if ref := gw.Spec.Sessions.Store.DSNSecretRef; ref != nil {
			volumes = append(volumes, secretKeyVolume(volumeStoreDSN, ref, gc.StoreDSNFileName))
			mounts = append(mounts, corev1.VolumeMount{Name: volumeStoreDSN, MountPath: gc.StoreSecretDir, ReadOnly: true})
		}
	} else {
		volumes = append(volumes, corev1.Volume{Name: volumeStore, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: PVCName(gw)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: volumeStore, MountPath: gc.StoreDataDir})
	}
	if n := gw.Spec.Quotas.Notify; n != nil && n.SlackWebhookSecretRef != nil {
		volumes = append(volumes, secretKeyVolume(volumeNotify, n.SlackWebhookSecretRef, gc.SlackWebhookFileName))
		mounts = append(mounts, corev1.VolumeMount{Name: volumeNotify, MountPath: gc.NotifySecretDir, ReadOnly: true})
	}
	volumes = append(volumes, corev1.Volume{Name: volumeTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mounts = append(mounts, corev1.VolumeMount{Name: volumeTmp, MountPath: "/tmp"})
	return volumes, mounts
}

// secretKeyVolume mounts one key of a user's Secret as the file fileName,
// so that nothing else in that Secret reaches the pod.
func secretKeyVolume(name string, ref *v1alpha1.SecretKeyRef, fileName string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  ref.Name,
		Items:       []corev1.KeyToPath{{Key: ref.Key, Path: fileName}},
		DefaultMode: ptr.To(secretMode),
	}}}
}

// containerSecurityContext is the restricted Pod Security Standard.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
