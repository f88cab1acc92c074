package controllers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The install bundle (what `make build-installer` writes) must be something
// the API server accepts as it is, for kubectl apply and GitOps alike.
var _ = Describe("The install bundle", func() {
	It("is accepted by the API server in a server-side dry run", func() {
		kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
		bundle, err := exec.Command(kubectl, "kustomize", filepath.Join("..", "config", "default")).Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(bundle)).To(ContainSubstring("kind: CustomResourceDefinition"))
		Expect(string(bundle)).To(ContainSubstring("name: chatgateway-manager-role"))

		user, err := testEnv.AddUser(envtest.User{Name: "installer", Groups: []string{"system:masters"}}, cfg)
		Expect(err).NotTo(HaveOccurred())
		kubeconfig, err := user.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(os.WriteFile(path, kubeconfig, 0o600)).To(Succeed())

		// Namespaced objects of a dry run need their namespace to exist for real.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "chatgateway-system"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())

		cmd := exec.Command(kubectl, "--kubeconfig", path, "apply", "--server-side", "--dry-run=server", "-f", "-")
		cmd.Stdin = strings.NewReader(string(bundle))
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("deployment.apps/chatgateway-controller-manager serverside-applied (server dry run)"))
	})
})
