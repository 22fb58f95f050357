package fakeapi

import (
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"checkin-sync/internal/month"
)

// Department is one node of the sample company's tree. ID 1 is the root.
type Department struct {
	ID, ParentID int
	Name         string
}

// User is one employee of the sample company.
type User struct {
	UserID, Name string
	Departments  []int
}

// Company is a deterministic sample company: the same seed and size always
// give the same departments, users and reports. Reports are derived from a
// hash on demand, so a company of 50,000 users costs only its user list.
type Company struct {
	seed     int64
	rootName string
	depts    []Department
	deptIdx  map[int]int // department id -> index in depts
	users    []User      // sorted by UserID
	extra    []userExtra // parallel to users
	byID     map[string]int
	byFold   map[string]int // lower-cased userid -> index; WeCom userids are case-insensitive
	members  map[int][]int  // department id -> user indexes, ascending by UserID

	mu       sync.Mutex
	versions map[reportKey]int
}

type userExtra struct {
	nameEx  string
	openID  string
	ruleIdx int
}

type reportKey struct {
	userid string
	m      month.Month
}

// NewCompany builds a company of the given size from seed.
func NewCompany(seed int64, users int) *Company {
	rng := rand.New(rand.NewSource(seed))
	c := &Company{
		seed:     seed,
		rootName: companyNames[rng.Intn(len(companyNames))],
		versions: make(map[reportKey]int),
	}
	c.depts = genDepartments(rng, c.rootName)
	c.deptIdx = make(map[int]int, len(c.depts))
	for i, d := range c.depts {
		c.deptIdx[d.ID] = i
	}
	if users < 0 {
		users = 0
	}
	c.genUsers(rng, users)
	return c
}

// deptPlan describes the names a top-level department may take, and the
// names its sub-departments may take.
type deptPlan struct {
	name     string
	children []string
}

var companyNames = []string{"示例科技", "云杉科技", "星河网络", "青禾信息"}

var topDepartments = []deptPlan{
	{"研发中心", []string{"后端组", "前端组", "测试组", "运维组", "数据组", "移动端组"}},
	{"产品中心", []string{"产品设计组", "用户研究组", "交互设计组"}},
	{"运营中心", []string{"客服一组", "客服二组", "内容运营组", "活动运营组"}},
	{"市场部", []string{"品牌组", "渠道组", "市场活动组"}},
	{"销售中心", []string{"华东大区", "华南大区", "华北大区", "西南大区"}},
	{"财务部", []string{"会计组", "出纳组"}},
	{"人力资源部", []string{"招聘组", "薪酬绩效组", "培训组"}},
	{"行政部", nil},
	{"法务部", nil},
}

// thirdLevel gives the third-level names for second-level departments that
// may have them.
var thirdLevel = map[string][]string{
	"后端组":  {"支付小组", "订单小组", "账户小组"},
	"前端组":  {"Web小组", "小程序小组"},
	"客服一组": {"早班", "夜班"},
	"华东大区": {"上海销售部", "杭州销售部", "南京销售部"},
	"华南大区": {"广州销售部", "深圳销售部"},
	"华北大区": {"北京销售部", "天津销售部"},
}

// genDepartments draws a tree of 8 to 15 departments (root included) that is
// two or three levels deep below the root.
func genDepartments(rng *rand.Rand, rootName string) []Department {
	for {
		depts := []Department{{ID: 1, ParentID: 0, Name: rootName}}
		add := func(parent int, name string) int {
			id := len(depts) + 1
			depts = append(depts, Department{ID: id, ParentID: parent, Name: name})
			return id
		}
		tops := rng.Perm(len(topDepartments))[:3+rng.Intn(3)]
		for _, ti := range tops {
			plan := topDepartments[ti]
			tid := add(1, plan.name)
			if len(plan.children) == 0 {
				continue
			}
			n := 1 + rng.Intn(min(3, len(plan.children)))
			for _, ci := range rng.Perm(len(plan.children))[:n] {
				child := plan.children[ci]
				cid := add(tid, child)
				if gc := thirdLevel[child]; len(gc) > 0 && rng.Intn(10) < 4 {
					for _, gi := range rng.Perm(len(gc))[:1+rng.Intn(min(2, len(gc)))] {
						add(cid, gc[gi])
					}
				}
			}
		}
		// At least one chosen top-level department has children (only two
		// plans have none), so the tree is always two or three levels deep.
		if len(depts) >= 8 && len(depts) <= 15 {
			return depts
		}
	}
}

type pinyinChar struct{ han, py string }

var surnames = []pinyinChar{
	{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"},
	{"黄", "huang"}, {"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"},
	{"马", "ma"}, {"朱", "zhu"}, {"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"林", "lin"},
	{"高", "gao"}, {"罗", "luo"}, {"郑", "zheng"}, {"梁", "liang"}, {"谢", "xie"}, {"宋", "song"},
	{"唐", "tang"}, {"韩", "han"}, {"冯", "feng"}, {"邓", "deng"}, {"曹", "cao"}, {"彭", "peng"},
	{"欧阳", "ouyang"}, {"司马", "sima"}, {"诸葛", "zhuge"},
}

var givenChars = []pinyinChar{
	{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"},
	{"强", "qiang"}, {"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"},
	{"杰", "jie"}, {"娟", "juan"}, {"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"秀", "xiu"},
	{"霞", "xia"}, {"平", "ping"}, {"刚", "gang"}, {"英", "ying"}, {"华", "hua"}, {"建", "jian"},
	{"文", "wen"}, {"玲", "ling"}, {"辉", "hui"}, {"鹏", "peng"}, {"宇", "yu"}, {"浩", "hao"},
	{"欣", "xin"}, {"婷", "ting"}, {"晨", "chen"}, {"子", "zi"}, {"轩", "xuan"}, {"涵", "han"},
	{"思", "si"}, {"雨", "yu"}, {"嘉", "jia"}, {"怡", "yi"}, {"安", "an"}, {"博", "bo"},
}

// maxIDLetters keeps userids within 20 bytes even with a five-digit suffix.
const maxIDLetters = 14

func (c *Company) genUsers(rng *rand.Rand, n int) {
	type gen struct {
		u User
		x userExtra
	}
	all := make([]gen, 0, n)
	nonRoot := len(c.depts) - 1
	for i := 0; i < n; i++ {
		sur := surnames[rng.Intn(len(surnames))]
		if rng.Intn(20) != 0 && len(sur.han) > 3 { // compound surnames stay rare
			sur = surnames[rng.Intn(len(surnames)-3)]
		}
		given := []pinyinChar{givenChars[rng.Intn(len(givenChars))]}
		if rng.Intn(3) != 0 {
			given = append(given, givenChars[rng.Intn(len(givenChars))])
		}
		name := sur.han
		givenPY := ""
		for _, g := range given {
			name += g.han
			givenPY += g.py
		}
		mixed := rng.Intn(100) < 15
		letters := sur.py + givenPY
		if mixed {
			letters = title(sur.py) + title(givenPY)
		}
		if len(letters) > maxIDLetters {
			letters = letters[:maxIDLetters]
		}
		userid := fmt.Sprintf("%s%04d", letters, i+1)

		var depts []int
		if rng.Intn(50) == 0 || nonRoot == 0 {
			depts = []int{1}
		} else {
			depts = []int{c.depts[1+rng.Intn(nonRoot)].ID}
		}
		if rng.Intn(10) == 0 && nonRoot > 1 {
			for {
				d := c.depts[1+rng.Intn(nonRoot)].ID
				if d != depts[0] {
					depts = append(depts, d)
					break
				}
			}
		}
		x := userExtra{
			openID:  "wo" + strconv.FormatUint(xxhash.Sum64String(strconv.FormatInt(c.seed, 10)+"/"+userid), 16),
			ruleIdx: pickRule(rng.Intn(100)),
		}
		if rng.Intn(10) < 3 {
			x.nameEx = title(givenPY) + " " + title(sur.py)
		}
		all = append(all, gen{User{UserID: userid, Name: name, Departments: depts}, x})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].u.UserID < all[j].u.UserID })
	c.users = make([]User, len(all))
	c.extra = make([]userExtra, len(all))
	c.byID = make(map[string]int, len(all))
	c.byFold = make(map[string]int, len(all))
	c.members = make(map[int][]int)
	for i, g := range all {
		c.users[i] = g.u
		c.extra[i] = g.x
		c.byID[g.u.UserID] = i
		c.byFold[strings.ToLower(g.u.UserID)] = i
		for _, d := range g.u.Departments {
			c.members[d] = append(c.members[d], i)
		}
	}
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// lookup finds a user by userid in any case, as WeCom does.
func (c *Company) lookup(userid string) (int, bool) {
	if i, ok := c.byID[userid]; ok {
		return i, true
	}
	i, ok := c.byFold[strings.ToLower(userid)]
	return i, ok
}

// Departments returns the tree, root first, parents before children.
func (c *Company) Departments() []Department {
	return append([]Department(nil), c.depts...)
}

// Users returns every employee, sorted by UserID.
func (c *Company) Users() []User {
	out := make([]User, len(c.users))
	for i, u := range c.users {
		out[i] = User{UserID: u.UserID, Name: u.Name, Departments: append([]int(nil), u.Departments...)}
	}
	return out
}

// Bump moves the (user, month) report to its next version, so its values
// change, as when an approval lands after the month closed.
func (c *Company) Bump(userid string, m month.Month) {
	c.mu.Lock()
	c.versions[reportKey{userid, m}]++
	c.mu.Unlock()
}

func (c *Company) version(userid string, m month.Month) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[reportKey{userid, m}]
}

// Report returns the user's full-month report row, shaped like one element
// of getcheckin_monthdata's `datas`, or nil for an unknown user.
func (c *Company) Report(userid string, m month.Month) map[string]any {
	i, ok := c.byID[userid]
	if !ok {
		return nil
	}
	first, last := wholeMonth(m)
	return c.report(i, m, first, last)
}

// wholeMonth is the window of a full month's report: its first and last
// days.
func wholeMonth(m month.Month) (first, last month.Date) {
	return month.Date{Year: m.Year, Mon: m.Mon, Day: 1}, month.Date{Year: m.Year, Mon: m.Mon, Day: m.Days()}
}

// deptPath is the "/"-joined path from the root to department id.
func (c *Company) deptPath(id int) string {
	var parts []string
	for id != 0 {
		i, ok := c.deptIdx[id]
		if !ok {
			break
		}
		parts = append(parts, c.depts[i].Name)
		id = c.depts[i].ParentID
	}
	for l, r := 0, len(parts)-1; l < r; l, r = l+1, r-1 {
		parts[l], parts[r] = parts[r], parts[l]
	}
	return strings.Join(parts, "/")
}

// subtree lists id and every department below it, parents first.
func (c *Company) subtree(id int) []Department {
	if _, ok := c.deptIdx[id]; !ok {
		return nil
	}
	in := map[int]bool{id: true}
	var out []Department
	for _, d := range c.depts { // parents always precede children
		if d.ID == id || in[d.ParentID] {
			in[d.ID] = true
			out = append(out, d)
		}
	}
	return out
}
