package fakeapi

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"checkin-sync/internal/month"
)

var jun2025 = month.MustParse("2025-06")

func TestCompanyIsDeterministic(t *testing.T) {
	a, b := NewCompany(7, 400), NewCompany(7, 400)
	if !reflect.DeepEqual(a.Departments(), b.Departments()) {
		t.Fatal("departments differ for the same seed")
	}
	if !reflect.DeepEqual(a.Users(), b.Users()) {
		t.Fatal("users differ for the same seed")
	}
	for _, u := range a.Users()[:50] {
		if !reflect.DeepEqual(a.Report(u.UserID, jun2025), b.Report(u.UserID, jun2025)) {
			t.Fatalf("report of %s differs for the same seed", u.UserID)
		}
	}
	c := NewCompany(8, 400)
	if reflect.DeepEqual(a.Users(), c.Users()) {
		t.Fatal("different seeds gave the same users")
	}
}

func TestCompanyShape(t *testing.T) {
	userID := regexp.MustCompile(`^[A-Za-z]+[0-9]+$`)
	for seed := int64(1); seed <= 20; seed++ {
		c := NewCompany(seed, 500)
		depts := c.Departments()
		if n := len(depts); n < 8 || n > 15 {
			t.Fatalf("seed %d: %d departments, want 8 to 15", seed, n)
		}
		if depts[0].ID != 1 || depts[0].ParentID != 0 {
			t.Fatalf("seed %d: root is %+v", seed, depts[0])
		}
		depth := map[int]int{1: 0}
		maxDepth := 0
		for _, d := range depts[1:] {
			pd, ok := depth[d.ParentID]
			if !ok {
				t.Fatalf("seed %d: department %d listed before its parent", seed, d.ID)
			}
			depth[d.ID] = pd + 1
			maxDepth = max(maxDepth, pd+1)
			if !containsHan(d.Name) {
				t.Fatalf("seed %d: department name %q is not Chinese", seed, d.Name)
			}
		}
		if maxDepth < 2 || maxDepth > 3 {
			t.Fatalf("seed %d: tree depth %d below the root, want 2 or 3", seed, maxDepth)
		}

		users := c.Users()
		if len(users) != 500 {
			t.Fatalf("seed %d: %d users", seed, len(users))
		}
		if !sort.SliceIsSorted(users, func(i, j int) bool { return users[i].UserID < users[j].UserID }) {
			t.Fatalf("seed %d: users not sorted", seed)
		}
		seen := map[string]bool{}
		two, mixed := 0, 0
		for _, u := range users {
			if l := len(u.UserID); l < 6 || l > 20 || !userID.MatchString(u.UserID) {
				t.Fatalf("seed %d: bad userid %q", seed, u.UserID)
			}
			if seen[strings.ToLower(u.UserID)] {
				t.Fatalf("seed %d: duplicate userid %q", seed, u.UserID)
			}
			seen[strings.ToLower(u.UserID)] = true
			if u.UserID != strings.ToLower(u.UserID) {
				mixed++
			}
			if !containsHan(u.Name) {
				t.Fatalf("seed %d: name %q is not Chinese", seed, u.Name)
			}
			switch len(u.Departments) {
			case 1:
			case 2:
				two++
				if u.Departments[0] == u.Departments[1] {
					t.Fatalf("seed %d: %s twice in one department", seed, u.UserID)
				}
			default:
				t.Fatalf("seed %d: %s in %d departments", seed, u.UserID, len(u.Departments))
			}
			for _, d := range u.Departments {
				if _, ok := depth[d]; !ok {
					t.Fatalf("seed %d: %s in unknown department %d", seed, u.UserID, d)
				}
			}
		}
		if two < 20 || two > 80 {
			t.Fatalf("seed %d: %d of 500 users in two departments, want about 10%%", seed, two)
		}
		if mixed == 0 {
			t.Fatalf("seed %d: no mixed-case userids", seed)
		}
	}
}

func containsHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

func TestReportShape(t *testing.T) {
	c := NewCompany(3, 600)
	types := map[float64]int{}
	var noHolidays, noRegular, emptyOverwork, stringy, withExceptions int
	for _, u := range c.Users() {
		rep := c.Report(u.UserID, jun2025)
		// Go through JSON, as a client would see it.
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		base := m["base_info"].(map[string]any)
		if base["acctid"] != u.UserID || base["name"] != u.Name {
			t.Fatalf("base_info %v for %s", base, u.UserID)
		}
		rt := base["record_type"].(float64)
		types[rt]++
		parts := strings.Split(base["departs_name"].(string), ";")
		if len(parts) != len(u.Departments) {
			t.Fatalf("departs_name %q for departments %v", base["departs_name"], u.Departments)
		}
		for _, p := range parts {
			if !strings.HasPrefix(p, c.rootName) {
				t.Fatalf("departs_name path %q does not start at the root", p)
			}
		}
		if _, ok := base["rule_info"].(map[string]any)["groupid"]; !ok {
			t.Fatal("rule_info.groupid missing")
		}
		sum := m["summary_info"].(map[string]any)
		wd := sum["work_days"].(float64)
		if rt != 7 {
			if wd < 15 || wd > 30 {
				t.Fatalf("work_days %v in June", wd)
			}
			if sum["standard_work_sec"].(float64) != wd*8*3600 {
				t.Fatalf("standard_work_sec %v for %v days", sum["standard_work_sec"], wd)
			}
			if rw := sum["regular_work_sec"].(float64); rw < 0 || rw > wd*10*3600 {
				t.Fatalf("regular_work_sec %v for %v days", rw, wd)
			}
		}
		if _, ok := sum["regular_days"]; !ok {
			noRegular++
		}
		ow := m["overwork_info"].(map[string]any)
		if len(ow) == 0 {
			emptyOverwork++
		} else if _, ok := ow["holidays_over_sec"]; !ok {
			noHolidays++
		}
		if len(m["exception_infos"].([]any)) > 0 {
			withExceptions++
		}
		for _, it := range m["sp_items"].([]any) {
			if _, ok := it.(map[string]any)["count"].(string); ok {
				stringy++
				break
			}
		}
	}
	for _, rt := range []float64{1, 3, 4, 7} {
		if types[rt] == 0 {
			t.Errorf("no row with record_type %v", rt)
		}
	}
	if len(types) != 4 {
		t.Errorf("record types %v, want only 1, 3, 4, 7", types)
	}
	for name, n := range map[string]int{
		"rows without holidays_over_sec": noHolidays, "rows without regular_days": noRegular,
		"rows with empty overwork_info": emptyOverwork, "rows with string sp_items numbers": stringy,
		"rows with exceptions": withExceptions,
	} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	if c.Report("nobody", jun2025) != nil {
		t.Error("unknown user has a report")
	}
}

func TestBumpChangesReport(t *testing.T) {
	c := NewCompany(5, 300)
	jul := jun2025.Next()
	users := c.Users()
	sample := append([]User(nil), users[:60]...)
	for _, u := range users {
		if c.Report(u.UserID, jun2025)["base_info"].(map[string]any)["record_type"] == 7 {
			sample = append(sample, u) // a no-rule row is all zeros; a bump must still change it
			break
		}
	}
	checked7 := false
	for _, u := range sample {
		before := c.Report(u.UserID, jun2025)
		other := c.Report(u.UserID, jul)
		c.Bump(u.UserID, jun2025)
		after := c.Report(u.UserID, jun2025)
		if reflect.DeepEqual(before, after) {
			t.Fatalf("bump left %s's report unchanged", u.UserID)
		}
		if !reflect.DeepEqual(other, c.Report(u.UserID, jul)) {
			t.Fatalf("bumping June changed %s's July", u.UserID)
		}
		if before["base_info"].(map[string]any)["record_type"] == 7 {
			checked7 = true
		}
		c.Bump(u.UserID, jun2025)
		if reflect.DeepEqual(after, c.Report(u.UserID, jun2025)) {
			t.Fatalf("second bump left %s's report unchanged", u.UserID)
		}
	}
	if !checked7 {
		t.Fatal("no no-rule user in the sample")
	}
}

// TestLargeCompanyIsCheap builds 50,000 users and samples reports across
// twelve months; nothing per report is stored.
func TestLargeCompanyIsCheap(t *testing.T) {
	c := NewCompany(11, 50000)
	users := c.Users()
	if len(users) != 50000 {
		t.Fatalf("%d users", len(users))
	}
	m := month.MustParse("2025-01")
	for i := 0; i < 12; i++ {
		for j := i; j < len(users); j += 5000 {
			if c.Report(users[j].UserID, m) == nil {
				t.Fatalf("no report for %s", users[j].UserID)
			}
		}
		m = m.Next()
	}
	c.mu.Lock()
	n := len(c.versions)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("reports stored %d versions without a bump", n)
	}
}
