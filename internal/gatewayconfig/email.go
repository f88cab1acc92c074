package gatewayconfig

import (
	"fmt"
	"unicode/utf8"
)

// CanonicalEmail is the one rule by which the gateway compares an email
// with the allowlist, the same the UserAllowlist CRD enforces on what it
// admits: plain ASCII only, upper-case ASCII letters lowered, nothing else
// changed. Unicode case folding is what must not happen: strings.ToLower
// turns U+212A KELVIN SIGN into "k", so "\u212Aate@example.com", an address
// an identity provider may hold for someone else, would pass for
// kate@example.com. Nothing is trimmed either: HTTP already drops the
// spaces and tabs around a header value, and a no-break space is part of
// the address, not padding.
func CanonicalEmail(s string) (string, error) {
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return "", &NonASCIIEmailError{Rune: r}
		}
		if 'A' <= c && c <= 'Z' {
			lower = true
		}
	}
	if !lower {
		return s, nil
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), nil
}

// NonASCIIEmailError says which character put an email outside ASCII.
type NonASCIIEmailError struct {
	Rune rune // utf8.RuneError for bytes that are not UTF-8
}

func (e *NonASCIIEmailError) Error() string {
	if e.Rune == utf8.RuneError {
		return "the email holds bytes that are not ASCII; only plain ASCII addresses are accepted"
	}
	return fmt.Sprintf("the email holds %U, which is not ASCII; only plain ASCII addresses are accepted (a look-alike letter is a different address)", e.Rune)
}

// ValidEmail reports whether s is an address as the allowlist holds them:
// canonical (see CanonicalEmail) and of the plain user@domain form.
func ValidEmail(s string) bool { return emailPattern.MatchString(s) }
