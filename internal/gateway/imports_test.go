package gateway_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/chatgateway/chatgateway-operator"

// gatewayRoot is the root of the gateway's packages.
const gatewayRoot = module + "/internal/gateway"

// layers says what each of the gateway's packages must not depend on,
// directly or not; each package's doc comment says the same. Every
// subpackage must also keep clear of the root, and the root of nothing.
var layers = map[string][]string{
	"metering":   {"translate", "upstream", "quota", "routing", "completion", "chatapi"},
	"translate":  {"upstream", "quota", "routing", "completion", "chatapi"},
	"upstream":   {"quota", "routing", "completion", "chatapi"},
	"quota":      {"translate", "upstream", "routing", "completion", "chatapi"},
	"routing":    {"quota", "completion", "chatapi"},
	"completion": {"chatapi"},
	"chatapi":    {},
}

type listedPackage struct {
	ImportPath string
	Module     *struct{ Path string }
	Deps       []string
}

// TestImportRules holds the module to its dependency rules, by what `go
// list` says each package depends on (tests aside): the gateway never
// depends on controller-runtime; the operator (controllers, render, the
// API types, the manager) never on the gateway; no part of the gateway on
// its root, nor on the parts after it in the request's path; and nothing
// but cmd/gateway on the root.
func TestImportRules(t *testing.T) {
	pkgs := goList(t)
	byPath := map[string]listedPackage{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for sub := range layers {
		if _, ok := byPath[gatewayRoot+"/"+sub]; !ok {
			t.Errorf("package %s/%s is in the rules but not in the module", gatewayRoot, sub)
		}
	}
	checked := 0
	for _, p := range pkgs {
		path := p.ImportPath
		inGateway := path == gatewayRoot || strings.HasPrefix(path, gatewayRoot+"/")
		for _, d := range p.Deps {
			switch {
			case inGateway && strings.HasPrefix(d, "sigs.k8s.io/controller-runtime"):
				t.Errorf("%s depends on %s: the gateway must not use controller-runtime", path, d)
			case isOperator(path) && (d == gatewayRoot || strings.HasPrefix(d, gatewayRoot+"/")):
				t.Errorf("%s depends on %s: the operator must not use the gateway's code", path, d)
			case d == gatewayRoot && path != module+"/cmd/gateway":
				t.Errorf("%s depends on the gateway's root: only cmd/gateway may", path)
			}
		}
		if sub, ok := strings.CutPrefix(path, gatewayRoot+"/"); ok {
			forbidden, known := layers[sub]
			if !known {
				t.Errorf("%s has no entry in layers: say what it must not depend on", path)
			}
			for _, f := range forbidden {
				if slices.Contains(p.Deps, gatewayRoot+"/"+f) {
					t.Errorf("%s depends on %s/%s, which its doc comment rules out", path, gatewayRoot, f)
				}
			}
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("go list gave %d packages of the module: the rules checked nothing", checked)
	}
}

func isOperator(path string) bool {
	for _, p := range []string{"/controllers", "/internal/render", "/api/", "/cmd/manager"} {
		if strings.HasPrefix(path, module+p) {
			return true
		}
	}
	return false
}

// goList lists the module's packages with their dependencies.
func goList(t *testing.T) []listedPackage {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "list", "-deps", "-json", "./...")
	cmd.Dir = "../.." // the module root
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	}
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module != nil && p.Module.Path == module {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}
