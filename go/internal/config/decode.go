package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
)

// Error is a problem with one value of the inventory. Host is empty for
// document-level problems; Field is the option path inside the host, as the
// inventory spells it (for example "deployment.ssh.user").
type Error struct {
	Host  string
	Field string
	Msg   string
	Hint  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("inventory: ")
	if e.Host != "" {
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot read %s: %v", path, errorsUnwrapPath(err)),
			Hint: "the inventory is written by nix/apps.nix; run lollypops through `nix run`, or pass --inventory PATH"}
	}
	return Decode(bytes.NewReader(data))
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
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, &Error{Msg: "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	// The version decides which shape to expect, so it is checked first.
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &Error{Msg: "the document must be a JSON object"}
	}
	if head.Version == nil {
		return nil, &Error{Field: "version", Msg: "missing"}
	}
	var version int
	if err := json.Unmarshal(head.Version, &version); err != nil {
		return nil, &Error{Field: "version", Msg: "must be an integer, got " + string(head.Version)}
	}
	if version != Version {
		return nil, &Error{Field: "version",
			Msg:  fmt.Sprintf("inventory version %d, but this runner reads version %d", version, Version),
			Hint: "the lollypops runner and the Nix module that wrote the inventory come from different revisions; update the lollypops flake input so both match"}
	}
	if err := checkShape(data, reflect.TypeFor[Inventory](), nil); err != nil {
		return nil, err
	}
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	for name, h := range inv.Hosts {
		h.Name = name
	}
	if err := Validate(&inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// checkShape walks data along the Go type t and reports the first unknown
// field, missing field, null or wrongly typed value, with its path. path is
// the list of keys from the document root.
func checkShape(data json.RawMessage, t reflect.Type, path []string) error {
	data = bytes.TrimSpace(data)
	isNull := bytes.Equal(data, []byte("null"))
	if t.Kind() == reflect.Pointer {
		if isNull {
			return nil
		}
		return checkShape(data, t.Elem(), path)
	}
	if isNull {
		return shapeError(path, "must not be null")
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if data[0] != '{' || json.Unmarshal(data, &obj) != nil {
			return shapeError(path, "must be an object, got "+preview(data))
		}
		known := make(map[string]bool, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			known[name] = true
			raw, ok := obj[name]
			if !ok {
				return shapeError(append(path, name), "missing")
			}
			if err := checkShape(raw, f.Type, append(path, name)); err != nil {
				return err
			}
		}
		for _, k := range sortedKeys(obj) {
			if !known[k] {
				return shapeError(append(path, k), "unknown field")
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if data[0] != '{' || json.Unmarshal(data, &obj) != nil {
			return shapeError(path, "must be an object, got "+preview(data))
		}
		for _, k := range sortedKeys(obj) {
			if err := checkShape(obj[k], t.Elem(), append(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		var arr []json.RawMessage
		if data[0] != '[' || json.Unmarshal(data, &arr) != nil {
			return shapeError(path, "must be a list, got "+preview(data))
		}
		for i, raw := range arr {
			if err := checkShape(raw, t.Elem(), append(path, fmt.Sprintf("[%d]", i))); err != nil {
				return err
			}
		}
	case reflect.String:
		if data[0] != '"' {
			return shapeError(path, "must be a string, got "+preview(data))
		}
	case reflect.Bool:
		if !bytes.Equal(data, []byte("true")) && !bytes.Equal(data, []byte("false")) {
			return shapeError(path, "must be true or false, got "+preview(data))
		}
	case reflect.Int:
		var n int
		if json.Unmarshal(data, &n) != nil {
			return shapeError(path, "must be an integer, got "+preview(data))
		}
	default:
		return shapeError(path, "unsupported type "+t.String())
	}
	return nil
}

// shapeError turns a document path into an Error: paths below
// hosts.<name> name the host and the field inside it.
func shapeError(path []string, msg string) error {
	e := &Error{Msg: msg}
	if len(path) >= 2 && path[0] == "hosts" {
		e.Host = path[1]
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
