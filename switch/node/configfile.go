package node

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/configs"
)

// A config file is read in three steps, so that it needs to name only what
// it changes:
//
//  1. check: the file's YAML tree is walked against Config's fields; every
//     unknown field (with the closest known name at its level) and every
//     value of the wrong kind is reported, all at once, with its line, in
//     the config's words ("a duration such as 2s"), never Go's types;
//  2. merge: the file's tree is laid over the built-in configs/switch.yaml
//     field by field, nested blocks included: a block names only the
//     fields it changes, a list replaces the built-in list whole, and an
//     issuer's own stand_in entry starts from the merged default entry;
//  3. decode: the merged tree becomes a Config, which Open validates.
//
// Rejected: decoding the file into a Config pre-filled with the defaults.
// yaml.v3 replaces a map's entries whole (stand_in.default would lose every
// field the file does not repeat), and its type errors name Go types
// ("cannot unmarshal !!str `2 seconds` into time.Duration").

// configErrorsMax bounds the problems reported for one file: past it the
// file is probably not a switch config at all.
const configErrorsMax = 20

// LoadConfig reads a config file over the built-in configs/switch.yaml;
// "" means the built-in file alone.
func LoadConfig(path string) (Config, error) {
	base, err := parseConfigTree(configs.Switch, "(built-in configs/switch.yaml)")
	if err != nil {
		return Config{}, err // a broken built-in file fails every test
	}
	tree := base
	if path != "" {
		doc, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		over, err := parseConfigTree(doc, path)
		if err != nil {
			return Config{}, err
		}
		if over != nil {
			tree = mergeConfigTree(base, over, "")
		}
	}
	var c Config
	if err := tree.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err) // a check missed a case: report it as it is
	}
	return c, nil
}

// parseConfigTree parses and checks one file; nil for an empty file.
func parseConfigTree(doc []byte, name string) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("config %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	top := root.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil, nil
	}
	problems := checkConfigTree(top)
	if len(problems) == 0 {
		return top, nil
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = p.Error()
	}
	return nil, fmt.Errorf("config %s:\n  %s", name, strings.Join(lines, "\n  "))
}

// ConfigProblem is one thing wrong in a config file: where, which field,
// and what it should be.
type ConfigProblem struct {
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path: issuer_links.request_timeout, stand_in.default.products[1]
	Msg   string
}

func (p ConfigProblem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Field, p.Msg)
	}
	return p.Field + ": " + p.Msg
}

// checkConfigTree checks a file's top node against Config.
func checkConfigTree(top *yaml.Node) []ConfigProblem {
	var c configChecker
	c.check(top, reflect.TypeFor[Config](), "")
	return c.problems
}

type configChecker struct{ problems []ConfigProblem }

var durationType = reflect.TypeFor[time.Duration]()

func (c *configChecker) add(n *yaml.Node, field, msg string) {
	if len(c.problems) < configErrorsMax {
		c.problems = append(c.problems, ConfigProblem{Line: n.Line, Field: field, Msg: msg})
	}
}

// check checks node n, the value of field (a dotted path; "" is the file),
// against type t.
func (c *configChecker) check(n *yaml.Node, t reflect.Type, field string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	name := field
	if name == "" {
		name = "the file"
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) {
		return // a block header with nothing under it changes nothing
	}
	switch {
	case t == durationType:
		if _, err := time.ParseDuration(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			c.add(n, name, "want a duration such as 2s, 500ms or 1m30s"+got(n))
		}
	case t.Kind() == reflect.Struct:
		c.checkStruct(n, t, field, name)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, name, "want a block of named entries"+got(n))
			return
		}
		c.checkKeys(n, field, func(k, v *yaml.Node) { c.check(v, t.Elem(), join(field, k.Value)) })
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, name, "want a list such as [a, b]"+got(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", name, i))
		}
	default:
		c.checkScalar(n, t, name)
	}
}

func (c *configChecker) checkStruct(n *yaml.Node, t reflect.Type, field, name string) {
	if n.Kind != yaml.MappingNode {
		c.add(n, name, "want a block of fields such as "+yamlName(t.Field(0))+": ..."+got(n))
		return
	}
	fields := map[string]reflect.Type{}
	var known []string
	for f := range t.Fields() {
		if key := yamlName(f); key != "" {
			fields[key] = f.Type
			known = append(known, key)
		}
	}
	c.checkKeys(n, field, func(k, v *yaml.Node) {
		ft, ok := fields[k.Value]
		if !ok {
			c.add(k, join(field, k.Value), "unknown field"+suggest(k.Value, known))
			return
		}
		c.check(v, ft, join(field, k.Value))
	})
}

// checkKeys calls each for every entry of mapping n, the value of field,
// after refusing keys that are not plain names or that appear twice.
func (c *configChecker) checkKeys(n *yaml.Node, field string, each func(k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			c.add(k, join(field, "?"), "want plain field names (no merge keys, no lists or blocks as names)")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			c.add(k, join(field, k.Value), fmt.Sprintf("set twice (first on line %d)", line))
			continue
		}
		seen[k.Value] = k.Line
		each(k, v)
	}
}

func (c *configChecker) checkScalar(n *yaml.Node, t reflect.Type, name string) {
	if n.Kind != yaml.ScalarNode {
		c.add(n, name, "want a single value"+got(n))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// Any scalar is text: institution: 00010000 stays "00010000".
	case reflect.Bool:
		if n.Tag != "!!bool" {
			c.add(n, name, "want true or false"+got(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if n.Tag != "!!int" || err != nil || reflect.New(t).Elem().OverflowInt(v) {
			c.add(n, name, "want a whole number"+got(n))
		}
	default:
		c.add(n, name, "cannot be set from a config file") // a field type this checker does not know: a bug
	}
}

// got quotes what the file holds, for the end of a message.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return ", not a block"
	case yaml.SequenceNode:
		return ", not a list"
	}
	if n.Tag == "!!null" {
		return ", not nothing"
	}
	return fmt.Sprintf(", not %q", n.Value)
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// suggest names the known field closest to an unknown one, when it is close
// enough to be what was meant: a few edits away, or one name inside the
// other (listen_addr, listen).
func suggest(key string, known []string) string {
	best, bestDist := "", len(key)+1
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	close := bestDist <= max(2, len(key)/3)
	inside := len(best) >= 4 && (strings.Contains(key, best) || strings.Contains(best, key))
	if best == "" || !(close || inside) {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance of two short names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mergeConfigTree lays over on base: mappings merge key by key, anything
// else in over replaces base's value. An empty value (a block header with
// nothing under it) keeps base's. field is the dotted path of base.
func mergeConfigTree(base, over *yaml.Node, field string) *yaml.Node {
	if over.Kind == yaml.AliasNode {
		over = over.Alias
	}
	if over.Kind == yaml.ScalarNode && over.Tag == "!!null" && base.Kind == yaml.MappingNode {
		return base
	}
	if base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	merged := *base
	merged.Content = append([]*yaml.Node(nil), base.Content...)
	for _, i := range mergeOrder(over, field) {
		k, v := over.Content[i], over.Content[i+1]
		at := mappingIndex(&merged, k.Value)
		switch {
		case at >= 0:
			merged.Content[at+1] = mergeConfigTree(merged.Content[at+1], v, join(field, k.Value))
		case field == "stand_in" && k.Value != standInDefault && mappingIndex(&merged, standInDefault) >= 0:
			// An issuer's own rules start from the default entry's.
			def := merged.Content[mappingIndex(&merged, standInDefault)+1]
			merged.Content = append(merged.Content, k, mergeConfigTree(def, v, join(field, k.Value)))
		default:
			merged.Content = append(merged.Content, k, v)
		}
	}
	return &merged
}

// mergeOrder is the order of over's entries to merge: the file's, except
// that stand_in's default entry goes first, so that issuers' entries start
// from the merged default wherever the file puts it.
func mergeOrder(over *yaml.Node, field string) []int {
	var order []int
	for i := 0; i+1 < len(over.Content); i += 2 {
		if field == "stand_in" && over.Content[i].Value == standInDefault {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	return order
}

// standInDefault is the stand_in entry of issuers without their own.
const standInDefault = "default"

func mappingIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}
