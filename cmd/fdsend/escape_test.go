package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// unescape reverses escape, and fails on anything escape never writes, so
// that the round trip also proves the form canonical.
func unescape(e string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(e); {
		r, n := utf8.DecodeRuneInString(e[i:])
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return "", errors.New("raw unprintable byte at " + strconv.Itoa(i))
		}
		if r != '\\' {
			b.WriteString(e[i : i+n])
			i += n
			continue
		}
		if i+1 >= len(e) {
			return "", errors.New("lone backslash at the end")
		}
		switch e[i+1] {
		case '\\':
			b.WriteByte('\\')
			i += 2
		case 't':
			b.WriteByte('\t')
			i += 2
		case 'n':
			b.WriteByte('\n')
			i += 2
		case 'r':
			b.WriteByte('\r')
			i += 2
		case 'x':
			if i+4 > len(e) || strings.ToLower(e[i+2:i+4]) != e[i+2:i+4] {
				return "", errors.New(`bad \x`)
			}
			v, err := strconv.ParseUint(e[i+2:i+4], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(v))
			i += 4
		case 'u':
			end := strings.IndexByte(e[i:], '}')
			if i+3 > len(e) || e[i+2] != '{' || end < 0 {
				return "", errors.New(`bad \u`)
			}
			h := e[i+3 : i+end]
			v, err := strconv.ParseUint(h, 16, 32)
			if err != nil || strconv.FormatUint(v, 16) != h || !utf8.ValidRune(rune(v)) {
				return "", errors.New(`bad \u{}`)
			}
			b.WriteRune(rune(v))
			i += end + 1
		default:
			return "", errors.New("unknown escape")
		}
	}
	return b.String(), nil
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"web", "web"},
		{"file /srv/a b", "file /srv/a b"},
		{`a\tb`, `a\\tb`},
		{"a\tb", `a\tb`},
		{"a\nb\r", `a\nb\r`},
		{"\x1b]0;owned\x07", `\x1b]0;owned\x07`},
		{"\x00\x7f", `\x00\x7f`},
		{"caf\xc3\xa9", "café"},
		{"\xff\xc3", `\xff\xc3`},
		{"\u0085\u009b", `\u{85}\u{9b}`},
		{"\u202eevil", `\u{202e}evil`},
		{"\u2028", `\u{2028}`},
		{"\ufffd", `\u{fffd}`},
	} {
		if got := escape(tc.in); got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzEscape checks that escape writes only printable characters (no tab,
// newline or control character) and that unescape gives back exactly the
// input: distinct strings never print alike.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{
		"", "web", `a\tb`, "a\tb", "\r\n", "\x1b]0;t\x07", "\x00\x7f\x80\xff",
		"\u0085", "\u202e", "\ufffd", "\xef\xbf\xbd", "\xed\xa0\x80", `\x41`, `\u{41}`, "日本\x9b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escape(s)
		for _, r := range e {
			if !strconv.IsPrint(r) || r == utf8.RuneError {
				t.Fatalf("escape(%q) = %q holds %U", s, e, r)
			}
		}
		back, err := unescape(e)
		if err != nil {
			t.Fatalf("unescape(escape(%q) = %q): %v", s, e, err)
		}
		if back != s {
			t.Fatalf("escape(%q) = %q reads back as %q", s, e, back)
		}
	})
}
