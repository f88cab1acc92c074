package gatewayconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxImageSide bounds each side of a picture, in pixels.
const MaxImageSide = 16384

// ParseImageSize reads a picture size written WIDTHxHEIGHT, such as
// "1024x1024".
func ParseImageSize(s string) (width, height int, err error) {
	ws, hs, ok := strings.Cut(s, "x")
	width, errW := strconv.Atoi(ws)
	height, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || width < 1 || height < 1 || width > MaxImageSide || height > MaxImageSide ||
		ws[0] == '0' || hs[0] == '0' || ws[0] == '+' || hs[0] == '+' {
		return 0, 0, fmt.Errorf("%q is not a size in pixels written WIDTHxHEIGHT, such as 1024x1024", s)
	}
	return width, height, nil
}
