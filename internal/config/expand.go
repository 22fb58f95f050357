package config

import (
	"fmt"
	"strings"
)

// expand replaces each ${NAME} in s with the value of environment variable
// NAME and each $$ with a single $. A $ followed by anything else is kept as
// it is. It works on one already-parsed scalar, so a value that contains
// ": " or "#" cannot change the shape of the document.
//
// It returns the names of the variables it used. Every variable that is not
// set is named in the error; the error never contains a variable's value.
func expand(s string, lookup func(string) (string, bool)) (string, []string, error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var (
		b       strings.Builder
		used    []string
		missing []string
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", used, fmt.Errorf("unterminated ${ (write $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", used, fmt.Errorf("${%s} is not a valid environment variable name (letters, digits and _, not starting with a digit; write $$ for a literal $)", truncate(name, 40))
			}
			used = append(used, name)
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	switch len(missing) {
	case 0:
		return b.String(), used, nil
	case 1:
		return "", used, fmt.Errorf("environment variable %s is not set", missing[0])
	default:
		return "", used, fmt.Errorf("environment variables %s are not set", strings.Join(missing, ", "))
	}
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// secretRef returns NAME when s is exactly "${NAME}".
func secretRef(s string) (string, bool) {
	if !strings.HasPrefix(s, "${") || !strings.HasSuffix(s, "}") {
		return "", false
	}
	name := s[2 : len(s)-1]
	if !validVarName(name) {
		return "", false
	}
	return name, true
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
