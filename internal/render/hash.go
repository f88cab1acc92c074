package render

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Hash is the hex SHA-256 of the parts. Each part is length-prefixed, so
// moving bytes from one part to the next changes the hash.
func Hash(parts ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
