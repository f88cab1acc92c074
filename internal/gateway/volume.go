package gateway

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// volumeReader reads the files of one poll. A directory holding a "..data"
// symlink is a mounted ConfigMap or Secret: the kubelet writes the new set
// into a timestamped directory, renames a new "..data" over the old one, and
// only then creates the visible names that are new, removes those that went
// away and deletes the old directory (pkg/volume/util/atomic_writer.go).
// Read name by name, a rotation halfway through shows the new token but no
// "previous" yet. volumeReader resolves each directory's "..data" once per
// poll and reads every file of that directory from the timestamped
// directory it names, so a poll sees the whole old set or the whole new
// one. A name absent from that set is missing, like a missing file; files
// elsewhere are read as they are.
type volumeReader struct {
	sets map[string]string // directory -> the set "..data" named this poll; "" if none
	// vanished is set when a set resolved this poll was deleted before all
	// of it was read (the kubelet deletes the old one after the swap): the
	// poll must read again.
	vanished bool
	last     bool             // the last attempt: a vanished set is an error, not a missing file
	resolved func(dir string) // tests: runs right after a directory's "..data" is read
}

// volumeReadAttempts bounds the reads of one poll. A second swap while a
// poll reads is already rare: the kubelet updates a volume once per sync.
const volumeReadAttempts = 3

// errVolumeChanging is a file's error when its volume was swapped under
// every attempt: the poll keeps what is in force and the next one retries.
var errVolumeChanging = errors.New("its volume kept changing while it was read")

// readVolumes runs read with a fresh volumeReader until no set it read from
// vanished meanwhile, at most volumeReadAttempts times. resolved is nil but
// in tests.
func readVolumes(resolved func(dir string), read func(*volumeReader)) {
	for attempt := 1; ; attempt++ {
		r := &volumeReader{sets: map[string]string{}, last: attempt == volumeReadAttempts, resolved: resolved}
		read(r)
		if !r.vanished || r.last {
			return
		}
	}
}

// ReadFile is os.ReadFile through this poll's resolution of the volume
// holding path. Its errors name path, as configured.
func (r *volumeReader) ReadFile(path string) ([]byte, error) {
	dir, name := filepath.Split(path)
	set, ok := r.sets[dir]
	if !ok {
		set = dataSet(dir)
		r.sets[dir] = set
		if r.resolved != nil {
			r.resolved(dir)
		}
	}
	if set == "" {
		return os.ReadFile(path)
	}
	b, err := os.ReadFile(filepath.Join(set, name))
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = path
		if errors.Is(err, fs.ErrNotExist) && dataSet(dir) != set {
			// Missing because the set is gone, not because it lacks name.
			r.vanished = true
			if r.last {
				pe.Err = errVolumeChanging
			}
		}
	}
	return b, err
}

// dataSet returns the directory dir's "..data" names, or "" when dir has no
// "..data" symlink.
func dataSet(dir string) string {
	target, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || target == "" {
		return ""
	}
	if filepath.IsAbs(target) {
		return target
	}
	return filepath.Join(dir, target)
}
