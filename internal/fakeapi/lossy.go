package fakeapi

import "slices"

// lossy alters, in a record being read back, every value of a widget type
// that JDYBehaviour.LossyTypes names; the caller holds s.jdy.mu.
func (s *Server) lossy(m map[string]any) map[string]any {
	types := s.jdy.behaviour.LossyTypes
	if len(types) == 0 {
		return m
	}
	for name, v := range m {
		if w, ok := s.widgets[name]; ok && slices.Contains(types, w.Type) {
			m[name] = alter(v)
		}
	}
	return m
}

func alter(v any) any {
	switch x := v.(type) {
	case string:
		return x + " "
	case float64:
		return x + 0.001
	}
	return v
}
