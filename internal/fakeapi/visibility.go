package fakeapi

// HideDepartment puts department id outside the app's visible range:
// department/simplelist with that id as its root, and user/simplelist for
// that department, answer 60011 ("指定的成员/部门/标签参数无权限"). The
// department still shows in the subtree listed from a visible root; a
// test that needs it gone from there too should not configure that root.
// (The reference marks WeCom's exact answer for a department outside the
// visible range as 60011 from its error table; the listing of such a
// department's parent is not documented.)
func (s *Server) HideDepartment(id int) {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.hiddenDepts == nil {
		st.hiddenDepts = make(map[int]bool)
	}
	st.hiddenDepts[id] = true
}

func (s *Server) isDeptHidden(id int) bool {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.hiddenDepts[id]
}
