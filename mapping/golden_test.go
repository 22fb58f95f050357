package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

const goldenDefault = "../testdata/golden/mapping-default-2025-06.json"

// TestGoldenDefault maps the June 2025 fixture with the init template's
// mapping. The golden file pins both the payload bytes and the hashes: a
// change to either would make every stored record look changed.
func TestGoldenDefault(t *testing.T) {
	mp := bindDefault(t)
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, row := range fixtureRows(t) {
		uid, _ := row["base_info"].(map[string]any)["acctid"].(string)
		res, err := mp.Map(Input{UserID: uid, Month: june, Report: row})
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if len(res.UnknownEnum) != 0 {
			t.Errorf("row %d: unexpected enum misses %v", i, res.UnknownEnum)
		}
		if i > 0 {
			out.WriteString(",\n")
		}
		fmt.Fprintf(&out, "  {\"key\": %s, \"hash\": \"%016x\",\n   \"data\": %s}", appendString(nil, mp.Key(uid, june)), res.Hash, res.Data)
	}
	out.WriteString("\n]\n")
	if !json.Valid(out.Bytes()) {
		t.Fatalf("golden output is not valid JSON:\n%s", out.Bytes())
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenDefault), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenDefault, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenDefault)
	if err != nil {
		t.Fatalf("%v (run go test ./mapping -run TestGoldenDefault -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\ngot:\n%s\nwant:\n%s", goldenDefault, out.Bytes(), want)
	}
}
