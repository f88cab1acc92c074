package controllers

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The CRD validation table: every file in testdata/validation is one case.
// Its first line says what the real API server must do with it:
//
//	# want: valid
//	# want: <substring of the rejection message>
//
// Cases are created with a server-side dry run, so they leave nothing behind.
var _ = Describe("CRD validation", func() {
	files, err := filepath.Glob(filepath.Join("testdata", "validation", "*.yaml"))
	if err != nil || len(files) == 0 {
		panic("no validation cases found in testdata/validation")
	}
	sort.Strings(files)
	entries := []TableEntry{}
	for _, f := range files {
		entries = append(entries, Entry(filepath.Base(f), f))
	}

	DescribeTable("a resource is accepted or rejected with a clear message",
		func(path string) {
			raw, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			want := readWant(raw)
			Expect(want).NotTo(BeEmpty(), "%s must start with a '# want:' line", path)

			obj := decodeOne(raw)
			obj.SetNamespace("default")
			err = k8sClient.Create(ctx, obj, client.DryRunAll)
			if want == "valid" {
				Expect(err).NotTo(HaveOccurred())
			} else {
				Expect(err).To(HaveOccurred(), "the API server accepted a resource that must be rejected")
				Expect(err.Error()).To(ContainSubstring(want))
			}
		},
		entries,
	)

	It("accepts every sample in config/samples", func() {
		samples, err := filepath.Glob(filepath.Join("..", "config", "samples", "chatgateway_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(samples).To(HaveLen(4))
		for _, s := range samples {
			raw, err := os.ReadFile(s)
			Expect(err).NotTo(HaveOccurred())
			obj := decodeOne(raw)
			obj.SetNamespace("default")
			Expect(k8sClient.Create(ctx, obj, client.DryRunAll)).To(Succeed(), s)
		}
	})
})

func readWant(raw []byte) string {
	line, _ := bufio.NewReader(bytes.NewReader(raw)).ReadString('\n')
	if w, ok := strings.CutPrefix(strings.TrimSpace(line), "# want:"); ok {
		return strings.TrimSpace(w)
	}
	return ""
}

func decodeOne(raw []byte) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	ExpectWithOffset(1, utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(&obj.Object)).To(Succeed())
	return obj
}
