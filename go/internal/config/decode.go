package config

import (
	"strconv"
	"sync"

	"github.com/lollypops/lollypops/go/internal/fault"
	"github.com/lollypops/lollypops/go/internal/parallel"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Error is a problem with one value of the inventory. Host is empty for
// document-level problems; Field is the option path inside the host, as the
// inventory spells it (for example "deployment.ssh.user").
type Error struct {
	Host  string
	Home  bool // Host names a home-manager target ("homes")
	Field string
	Msg   string
	// Advice says how to fix it; "" when nothing obvious does.
	Advice string
}

// Hint is the error's advice (fault.Hinter).
func (e *Error) Hint() string { return e.Advice }

// Kind is fault.Input: an inventory lollypops cannot deploy.
func (e *Error) Kind() fault.Kind { return fault.Input }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("inventory: ")
	switch {
	case e.Host != "" && e.Home:
		fmt.Fprintf(&b, "home %q: ", e.Host)
	case e.Host != "":
		fmt.Fprintf(&b, "host %q: ", e.Host)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, decodes and validates the inventory at path.
func Load(path string) (*Inventory, error) {
	doc, err := Open(path)
	if err != nil {
		return nil, err
	}
	return doc.Inventory(nil)
}

// errorsUnwrapPath drops the path from an *os.PathError, which Load's
// message already names.
func errorsUnwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Decode decodes and validates an inventory. Unknown fields, missing fields,
// nulls where a value is required and a wrong version are errors naming the
// host and the field.
func Decode(r io.Reader) (*Inventory, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	doc, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return doc.Inventory(nil)
}

// Document is an inventory whose hosts are decoded and validated on
// demand: a run that deploys one host of thousands reads that host only, so
// its cost does not grow with the fleet.
type Document struct {
	hosts map[string]json.RawMessage
	homes map[string]json.RawMessage
	names []string
}

// Open reads the inventory at path and checks its version and outline.
func Open(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot read %s: %v", path, errorsUnwrapPath(err)),
			Advice: "the inventory is written by nix/apps.nix; run lollypops through `nix run`, or pass --inventory PATH"}
	}
	return Parse(data)
}

// Parse checks an inventory's version and outline; hosts are decoded by
// Host and Inventory.
func Parse(data []byte) (*Document, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var v any
		if json.Unmarshal(data, &v) == nil {
			return nil, &Error{Msg: "the document must be a JSON object"}
		}
		return nil, &Error{Msg: "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	// The version decides which shape to expect, so it is checked first.
	raw, ok := top["version"]
	if !ok {
		return nil, &Error{Field: "version", Msg: "missing"}
	}
	var version int
	if err := json.Unmarshal(raw, &version); err != nil {
		return nil, &Error{Field: "version", Msg: "must be an integer, got " + string(raw)}
	}
	if version != Version {
		return nil, &Error{Field: "version",
			Msg:    fmt.Sprintf("inventory version %d, but this runner reads version %d", version, Version),
			Advice: "the lollypops runner and the Nix module that wrote the inventory come from different revisions; update the lollypops flake input so both match"}
	}
	for _, k := range sortedKeys(top) {
		if k != "version" && k != "hosts" && k != "homes" {
			return nil, &Error{Field: k, Msg: "unknown field"}
		}
	}
	doc := &Document{}
	for _, m := range []struct {
		field string
		into  *map[string]json.RawMessage
	}{{"hosts", &doc.hosts}, {"homes", &doc.homes}} {
		raw, ok := top[m.field]
		if !ok {
			return nil, &Error{Field: m.field, Msg: "missing"}
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(raw, m.into) != nil {
			return nil, &Error{Field: m.field, Msg: "must be an object, got " + preview(raw)}
		}
	}
	for _, name := range sortedKeys(doc.homes) {
		if _, ok := doc.hosts[name]; ok {
			return nil, &Error{Host: name, Msg: "is both a NixOS host (nixosConfigurations) and a home-manager target (homeConfigurations)",
				Advice: "their names share the task names (\"<name>:rebuild\"); rename one of them"}
		}
	}
	doc.names = append(sortedKeys(doc.hosts), sortedKeys(doc.homes)...)
	sort.Strings(doc.names)
	return doc, nil
}

// NewDocument returns a document without targets, whose entries are added
// one at a time (Add, AddHome), as a flake's hosts and homes are evaluated.
func NewDocument() *Document {
	return &Document{hosts: map[string]json.RawMessage{}, homes: map[string]json.RawMessage{}}
}

// Add sets the entry of one host, to be decoded and validated by Host.
func (d *Document) Add(name string, entry json.RawMessage) {
	d.add(d.hosts, name, entry)
}

// AddHome sets the entry of one home-manager target.
func (d *Document) AddHome(name string, entry json.RawMessage) {
	d.add(d.homes, name, entry)
}

func (d *Document) add(into map[string]json.RawMessage, name string, entry json.RawMessage) {
	if !d.Has(name) {
		i, _ := slices.BinarySearch(d.names, name)
		d.names = slices.Insert(d.names, i, name)
	}
	into[name] = entry
}

// Names returns every target's name (hosts and homes), sorted.
func (d *Document) Names() []string { return d.names }

// Has reports whether the inventory has a host or home of that name.
func (d *Document) Has(name string) bool {
	_, ok := d.hosts[name]
	if !ok {
		_, ok = d.homes[name]
	}
	return ok
}

// Host decodes and validates one target: a NixOS host, or a home-manager
// target as a Host with Home set.
func (d *Document) Host(name string) (*Host, error) {
	if raw, ok := d.homes[name]; ok {
		return decodeHome(name, raw)
	}
	raw, ok := d.hosts[name]
	if !ok {
		return nil, &Error{Host: name, Msg: "no such host in the inventory"}
	}
	if err := checkShape(raw, reflect.TypeFor[Host](), []string{"hosts", name}); err != nil {
		return nil, err
	}
	h := &Host{}
	if err := json.Unmarshal(raw, h); err != nil {
		return nil, &Error{Host: name, Msg: err.Error()}
	}
	h.Name = name
	if err := validateHost(name, h); err != nil {
		return nil, err
	}
	return h, nil
}

func decodeHome(name string, raw json.RawMessage) (*Host, error) {
	if err := checkShape(raw, reflect.TypeFor[Home](), []string{"homes", name}); err != nil {
		return nil, err
	}
	e := &Home{}
	if err := json.Unmarshal(raw, e); err != nil {
		return nil, &Error{Host: name, Msg: err.Error()}
	}
	h := e.Target(name)
	if err := validateHome(name, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Hosts is Host for each of names: hosts[i] and errs[i] are names[i]'s.
// Many hosts (a listing of a thousand) are decoded on every core.
func (d *Document) Hosts(names []string) (hosts []*Host, errs []error) {
	hosts = make([]*Host, len(names))
	errs = make([]error, len(names))
	parallel.For(len(names), 64, func(i int) { hosts[i], errs[i] = d.Host(names[i]) })
	return hosts, errs
}

// Inventory decodes and validates the named hosts (nil: every host), in
// name order, and returns them as an inventory.
func (d *Document) Inventory(names []string) (*Inventory, error) {
	if names == nil {
		names = d.names
	} else {
		names = slices.Clone(names)
		sort.Strings(names)
	}
	hosts, errs := d.Hosts(names)
	inv := &Inventory{Version: Version, Hosts: make(map[string]*Host, len(names))}
	for i, name := range names {
		if errs[i] != nil {
			return nil, errs[i]
		}
		inv.Hosts[name] = hosts[i]
	}
	return inv, nil
}

// checkShape walks data along the Go type t and reports the first unknown
// field, missing field, null or wrongly typed value, with its path. path is
// the list of keys from the document root. data is parsed once; the walk
// goes over the parsed value (a host's entry is read on every run, for
// every host of a listing).
func checkShape(data json.RawMessage, t reflect.Type, path []string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return shapeError(path, "must be an object, got "+preview(bytes.TrimSpace(data)))
	}
	return checkValue(v, t, path)
}

func checkValue(v any, t reflect.Type, path []string) error {
	if t.Kind() == reflect.Pointer {
		if v == nil {
			return nil
		}
		return checkValue(v, t.Elem(), path)
	}
	if v == nil {
		return shapeError(path, "must not be null")
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return shapeError(path, "must be an object, got "+previewValue(v))
		}
		fields := jsonFields(t)
		for _, f := range fields {
			raw, ok := obj[f.name]
			if !ok {
				return shapeError(append(path, f.name), "missing")
			}
			if err := checkValue(raw, f.typ, append(path, f.name)); err != nil {
				return err
			}
		}
		if len(obj) > len(fields) {
			for _, k := range sortedKeys(obj) {
				if !slices.ContainsFunc(fields, func(f jsonField) bool { return f.name == k }) {
					return shapeError(append(path, k), "unknown field")
				}
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return shapeError(path, "must be an object, got "+previewValue(v))
		}
		for _, k := range sortedKeys(obj) {
			if err := checkValue(obj[k], t.Elem(), append(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return shapeError(path, "must be a list, got "+previewValue(v))
		}
		for i, e := range arr {
			if err := checkValue(e, t.Elem(), append(path, fmt.Sprintf("[%d]", i))); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return shapeError(path, "must be a string, got "+previewValue(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return shapeError(path, "must be true or false, got "+previewValue(v))
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return shapeError(path, "must be an integer, got "+previewValue(v))
		}
		if _, err := strconv.Atoi(string(n)); err != nil {
			return shapeError(path, "must be an integer, got "+previewValue(v))
		}
	default:
		return shapeError(path, "unsupported type "+t.String())
	}
	return nil
}

// jsonField is a struct field as the document names it.
type jsonField struct {
	name string
	typ  reflect.Type
}

var fieldsOf sync.Map // reflect.Type -> []jsonField

// jsonFields lists the fields of struct type t that have a JSON name.
func jsonFields(t reflect.Type) []jsonField {
	if f, ok := fieldsOf.Load(t); ok {
		return f.([]jsonField)
	}
	var fields []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		fields = append(fields, jsonField{name, f.Type})
	}
	fieldsOf.Store(t, fields)
	return fields
}

// previewValue is preview of a parsed value, as JSON.
func previewValue(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return fmt.Sprint(v)
	}
	return preview(bytes.TrimSpace(b.Bytes()))
}

// shapeError turns a document path into an Error: paths below
// hosts.<name> (or homes.<name>) name the host and the field inside it.
func shapeError(path []string, msg string) error {
	e := &Error{Msg: msg}
	if len(path) >= 2 && (path[0] == "hosts" || path[0] == "homes") {
		e.Host, e.Home = path[1], path[0] == "homes"
		path = path[2:]
	}
	e.Field = joinPath(path)
	return e
}

func joinPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func preview(data []byte) string {
	const max = 40
	if len(data) > max {
		return string(data[:max]) + "..."
	}
	return string(data)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
