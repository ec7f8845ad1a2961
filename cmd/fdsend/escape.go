package main

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// escape makes s safe to print on a terminal and in tab-separated output,
// and unambiguous: every printable character (strconv.IsPrint: letters,
// marks, numbers, punctuation, symbols and the ASCII space) stands for
// itself, except the backslash, which starts an escape:
//
//	\\        a backslash
//	\t \n \r  a tab, a newline, a carriage return
//	\xHH      any other byte below 0x80 that is not printable (control
//	          characters, DEL), and every byte that is not part of valid
//	          UTF-8; two lower-case hex digits
//	\u{H...}  a valid character that is not printable (C1 controls, format
//	          characters such as bidirectional overrides, line and paragraph
//	          separators, non-ASCII spaces), and U+FFFD, the replacement
//	          character, which JSON puts where a string had invalid UTF-8
//	          (so what the holder could not send shows); its code point in
//	          lower-case hex
//
// So the output holds no control character, no tab and no newline, and
// distinct strings never print alike. Names and descriptions the holder
// reports (stored paths can hold any byte but NUL) and every line the
// holder commands write go through it.
func escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '\\' || r == utf8.RuneError || !strconv.IsPrint(r) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	const hex = "0123456789abcdef"
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && n == 1, r < utf8.RuneSelf && !strconv.IsPrint(r):
			c := s[i]
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		case !strconv.IsPrint(r), r == utf8.RuneError:
			b.WriteString(`\u{`)
			b.WriteString(strconv.FormatInt(int64(r), 16))
			b.WriteByte('}')
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
