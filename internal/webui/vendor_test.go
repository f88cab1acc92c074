package webui

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendoredFilesAreAsPublished checks every vendored file against the
// sha256 in hack/webui-vendor.lock (which `make webui-vendor` checks against
// the npm registry), and that nothing under static/vendor is unpinned: a
// hand edit or an extra file fails here, without the network.
func TestVendoredFilesAreAsPublished(t *testing.T) {
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join(root, "hack", "webui-vendor.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pinned := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || fields[0] != "file" {
			continue
		}
		dst, want := fields[2], fields[3]
		pinned[filepath.ToSlash(dst)] = true
		b, err := os.ReadFile(filepath.Join(root, dst))
		if err != nil {
			t.Errorf("%s is in the lock but not in the tree: run make webui-vendor", dst)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("%s differs from the published file (sha256 %x, lock %s): run make webui-vendor", dst, sum, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pinned) == 0 {
		t.Fatal("the lock lists no files")
	}
	err = fs.WalkDir(files, "static/vendor", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !pinned["internal/webui/"+p] {
			t.Errorf("%s is served but not pinned in hack/webui-vendor.lock", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
