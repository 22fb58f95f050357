package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Subforms are replaced as a whole by an update that includes them, and
// rows sent again get new _ids, so an update leaves out a subform whose
// content is unchanged. Result.SubformHash and ReadBackResult.SubformHash
// tell whether it changed; WithoutSubforms gives the payload to send when it
// did not.

// hashSubform adds one subform field to d: its member as Map writes it
// after a comma, ,"name":{"value":value}. value is the field's value as
// written in the payload.
func hashSubform(d *xxhash.Digest, f *bfield, value []byte) {
	_, _ = d.Write(f.prefix)
	_, _ = d.Write(value)
	_, _ = d.WriteString("}")
}

// HasSubforms reports whether the mapping writes a subform field, that is
// whether Result.SubformHash is meaningful and WithoutSubforms removes
// anything.
func (m *Mapper) HasSubforms() bool { return len(m.subKeys) > 0 }

// WithoutSubforms returns a payload in Map's canonical encoding (Result.Data
// or ReadBackResult.Data: {"field":{"value":...},...} with sorted keys and
// no white space) with every subform field of the mapping removed. The
// other members are kept byte for byte and in their order, so the result is
// what Map would write for the same mapping without its subform fields.
// When the mapping has no subform it returns data itself, unchecked.
// Otherwise the result is a new slice, and the error is for data that is
// not a canonical JSON object.
func (m *Mapper) WithoutSubforms(data []byte) ([]byte, error) {
	if len(m.subKeys) == 0 {
		return data, nil
	}
	if !json.Valid(data) {
		return nil, errors.New("without subforms: payload is not valid JSON")
	}
	if len(data) < 2 || data[0] != '{' {
		return nil, errors.New("without subforms: payload is not a JSON object")
	}
	out := make([]byte, 1, len(data))
	out[0] = '{'
	i, n := 1, 0
	if data[i] == '}' {
		i++
	} else {
		for {
			start := i
			if data[i] != '"' {
				return nil, fmt.Errorf("without subforms: expected a key at byte %d", i)
			}
			i = skipString(data, i)
			key := data[start:i]
			if i >= len(data) || data[i] != ':' {
				return nil, fmt.Errorf("without subforms: expected ':' at byte %d", i)
			}
			var err error
			if i, err = skipValue(data, i+1); err != nil {
				return nil, err
			}
			if !m.isSubKey(key) {
				if n > 0 {
					out = append(out, ',')
				}
				out = append(out, data[start:i]...)
				n++
			}
			if i >= len(data) {
				return nil, errors.New("without subforms: payload cut short")
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return nil, fmt.Errorf("without subforms: expected ',' or '}' at byte %d", i)
			}
			i++
		}
	}
	if i != len(data) {
		return nil, fmt.Errorf("without subforms: %d bytes after the object", len(data)-i)
	}
	return append(out, '}'), nil
}

// isSubKey reports whether key, a JSON string as the payload holds it, names
// a subform field.
func (m *Mapper) isSubKey(key []byte) bool {
	for _, k := range m.subKeys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// skipString returns the index after the JSON string that starts at
// data[i], which is '"'. data is valid JSON.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the JSON value that starts at data[i].
// data is valid JSON; values in Map's encoding have no white space.
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return i, errors.New("without subforms: payload cut short")
	}
	switch data[i] {
	case '"':
		return skipString(data, i), nil
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return i, errors.New("without subforms: payload cut short")
	}
	// A number or a literal runs to the next delimiter.
	start := i
	for i < len(data) && data[i] != ',' && data[i] != '}' && data[i] != ']' {
		i++
	}
	if i == start {
		return i, fmt.Errorf("without subforms: expected a value at byte %d", i)
	}
	return i, nil
}
