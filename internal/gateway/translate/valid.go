package translate

import (
	"encoding/binary"
	"math/bits"
)

// Every provider event is checked to be valid JSON before it is forwarded,
// and a pass-through stream needs to know only whether the event's object
// carries a usage or an error. validEvent does both in one pass over the
// event, with jsontext's acceptance under the lenient rules
// (AllowDuplicateNames, AllowInvalidUTF8): RFC 8259's grammar, nesting at
// most maxNestingDepth deep, any bytes but controls, quotes and
// backslashes in strings (invalid UTF-8 and lone surrogate escapes pass,
// as AllowInvalidUTF8 lets them), whitespace around tokens and one value
// only. It is tested against jsontext.Value.IsValid (valid_test.go).

// maxNestingDepth is jsontext's: 10000 nested objects or arrays pass,
// 10001 do not.
const maxNestingDepth = 10000

// What validEvent reports about the members of a top-level object. A bit
// set is a hint to read the object (a name that might match with escapes
// or non-ASCII case folding is reported too); a bit clear is certain.
const (
	memberUsage uint8 = 1 << iota // "usage" (any case), and not null
	memberError                   // "error" (any case), and not null
)

// validEvent reports whether b is one valid JSON value, and, when it is an
// object, which of its members of interest (memberUsage, memberError) may
// be there with a value other than null.
func validEvent(b []byte) (ok bool, members uint8) {
	var (
		i        int
		depth    int    // containers open
		inObject bool   // the innermost is an object
		objects  uint64 // bit d-1 set: the container at depth d is an object (d ≤ 64)
		deep     []bool // the same beyond 64 levels: deep[d-65]
		pending  uint8  // the member bit the name just read stands for
	)
	i = space(b, 0)
value: // b[i:] starts a value
	if i >= len(b) {
		return false, 0
	}
	if pending != 0 {
		if b[i] != 'n' { // null is checked below, as any literal
			members |= pending
		}
		pending = 0
	}
	switch b[i] {
	case '{', '[':
		if depth == maxNestingDepth {
			return false, 0
		}
		inObject = b[i] == '{'
		if depth++; depth <= 64 {
			if inObject {
				objects |= 1 << (depth - 1)
			} else {
				objects &^= 1 << (depth - 1)
			}
		} else {
			deep = append(deep[:depth-65], inObject)
		}
		i = space(b, i+1)
		if i < len(b) && (b[i] == '}' && inObject || b[i] == ']' && !inObject) {
			i++
			goto end
		}
		if inObject {
			goto name
		}
		goto value
	case '"':
		if i = validString(b, i); i < 0 {
			return false, 0
		}
	case 't':
		if !hasLiteral(b, i, "true") {
			return false, 0
		}
		i += 4
	case 'f':
		if !hasLiteral(b, i, "false") {
			return false, 0
		}
		i += 5
	case 'n':
		if !hasLiteral(b, i, "null") {
			return false, 0
		}
		i += 4
	default:
		if i = validNumber(b, i); i < 0 {
			return false, 0
		}
	}

next: // a value ended at b[i]
	i = space(b, i)
	if depth == 0 {
		return i == len(b), members
	}
	if i >= len(b) {
		return false, 0
	}
	switch b[i] {
	case ',':
		i = space(b, i+1)
		if inObject {
			goto name
		}
		goto value
	case '}':
		if !inObject {
			return false, 0
		}
	case ']':
		if inObject {
			return false, 0
		}
	default:
		return false, 0
	}
	i++
end: // the innermost container closed before b[i]
	switch depth--; {
	case depth == 0:
	case depth <= 64:
		inObject = objects&(1<<(depth-1)) != 0
	default:
		inObject = deep[depth-65]
	}
	goto next

name: // b[i:] starts a member's name
	if i >= len(b) || b[i] != '"' {
		return false, 0
	}
	{
		start := i
		if i = validString(b, i); i < 0 {
			return false, 0
		}
		if depth == 1 {
			pending = topMember(b[start+1 : i-1])
		}
	}
	i = space(b, i)
	if i >= len(b) || b[i] != ':' {
		return false, 0
	}
	i = space(b, i+1)
	goto value
}

// space is skipSpace, quicker where there is none (as in most events).
func space(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpace(b, i)
}

// topMember is the member bit a top-level name may stand for. Names match
// case-insensitively, as unmarshalLenient matches them; a name with an
// escape or a non-ASCII byte (the Kelvin sign folds to k, the long s to s)
// is left to the object scanner to match exactly.
func topMember(raw []byte) uint8 {
	switch {
	case len(raw) < 5: // too short even escaped or folded
		return 0
	case len(raw) == 5: // plain ASCII, or too short
		var w [5]byte
		for j, c := range raw {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			w[j] = c
		}
		switch string(w[:]) {
		case "usage":
			return memberUsage
		case "error":
			return memberError
		}
		return 0
	}
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return memberUsage | memberError
		}
	}
	return 0
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// validNumber returns the end of the number starting at b[i], or -1.
func validNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// validString returns the end of the string starting at b[i] (a quote),
// or -1. Bytes from 0x80 are taken as they are; eight bytes at a time are
// searched for a control, a quote or a backslash.
func validString(b []byte, i int) int {
	i++
	for {
		for len(b)-i >= 8 {
			x := binary.LittleEndian.Uint64(b[i:])
			q, s := x^('"'*lsb), x^('\\'*lsb)
			// A byte below 0x20, or a zero byte in q or s. Each test is
			// exact for its lowest byte found (a borrow starts only at a
			// byte that is found), so that byte is the first special one.
			if found := ((x-0x20*lsb)&^x | (q-lsb)&^q | (s-lsb)&^s) & msb; found != 0 {
				i += bits.TrailingZeros64(found) / 8
				goto special
			}
			i += 8
		}
		for i < len(b) && stringSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
	special:
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default:
			return -1 // a control character
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringSafe: the bytes that stand for themselves inside a string.
var stringSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
