package gateway

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// kubeletUpdate updates the volume dir to files in the kubelet's order:
// the new timestamped directory, the "..data" rename, the new visible
// names, then the old directory deleted.
func kubeletUpdate(t *testing.T, dir string, gen int, files map[string]string) {
	t.Helper()
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := fmt.Sprintf("..2026_01_02_03_04_05.%d", gen)
	for name, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func tokenVolume(t *testing.T) (string, gatewayconfig.Auth) {
	dir := t.TempDir()
	return dir, gatewayconfig.Auth{
		TokenFile:                  filepath.Join(dir, "token"),
		PreviousTokenFile:          filepath.Join(dir, "previous"),
		PreviousTokenExpiresAtFile: filepath.Join(dir, "previous-expires-at"),
	}
}

// TestVolumeReadAfterTheSetVanished: the kubelet swaps "..data" and deletes
// the set a poll has just resolved, before the poll reads it. The poll reads
// again and sees the whole new set, not a token missing from the old one.
func TestVolumeReadAfterTheSetVanished(t *testing.T) {
	dir, auth := tokenVolume(t)
	expires := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	kubeletUpdate(t, dir, 1, map[string]string{"token": "first-token"})
	rotation := map[string]string{"token": "second-token", "previous": "first-token", "previous-expires-at": expires.Format(time.RFC3339)}
	resolutions := 0
	var got tokens
	var err error
	readVolumes(func(string) {
		resolutions++
		if resolutions == 1 {
			kubeletUpdate(t, dir, 2, rotation)
		}
	}, func(r *volumeReader) { got, err = readTokensFrom(r, auth) })
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	want := tokens{current: sha256.Sum256([]byte("second-token")), previous: sha256.Sum256([]byte("first-token")), hasPrevious: true, previousExpires: expires}
	if !got.equal(want) {
		t.Errorf("read %+v, want the rotated set", got)
	}
	if resolutions != 2 {
		t.Errorf("resolved %d times, want 2 (once per attempt)", resolutions)
	}
}

// TestVolumeKeptChanging: a volume swapped under every attempt is an error,
// so the tokens in force stay, rather than a "previous" read as absent,
// which would revoke it before its time.
func TestVolumeKeptChanging(t *testing.T) {
	dir, auth := tokenVolume(t)
	kubeletUpdate(t, dir, 1, map[string]string{"token": "t1", "previous": "t0", "previous-expires-at": "2026-01-02T04:00:00Z"})
	gen := 1
	var err error
	readVolumes(func(string) {
		gen++
		kubeletUpdate(t, dir, gen, map[string]string{"token": fmt.Sprint("t", gen), "previous": fmt.Sprint("t", gen-1), "previous-expires-at": "2026-01-02T04:00:00Z"})
	}, func(r *volumeReader) { _, err = readTokensFrom(r, auth) })
	if !errors.Is(err, errVolumeChanging) {
		t.Fatalf("err = %v, want %v", err, errVolumeChanging)
	}
	if gen-1 != volumeReadAttempts {
		t.Errorf("%d attempts, want %d", gen-1, volumeReadAttempts)
	}
}
