package main

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeConfigYAML decodes a configuration file into dst (a pointer to a
// struct with yaml tags) strictly, with errors in the user's words: the
// key as typed, its line, the allowed keys and the kind of value wanted —
// never a Go type name.
func decodeConfigYAML(data []byte, dst any) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil // an empty file means no settings
		}
		return fmt.Errorf("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return decodeMapping(doc.Content[0], reflect.ValueOf(dst).Elem(), "")
}

func decodeMapping(n *yaml.Node, v reflect.Value, prefix string) error {
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			return fmt.Errorf("line %d: want key: value settings", n.Line)
		}
		return fmt.Errorf("%s (line %d): want key: value settings under it", strings.TrimSuffix(prefix, "."), n.Line)
	}
	fields := map[string]int{}
	var keys []string
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
			keys = append(keys, prefix+name)
		}
	}
	slices.Sort(keys)
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s%s (line %d): unknown key; the keys are %s", prefix, k.Value, k.Line, strings.Join(keys, ", ")))
			continue
		}
		f := v.Field(idx)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Duration]() {
			if err := decodeMapping(val, f, prefix+k.Value+"."); err != nil {
				errs = append(errs, err.Error())
			}
			continue
		}
		if err := val.Decode(f.Addr().Interface()); err != nil {
			errs = append(errs, fmt.Sprintf("%s%s (line %d): %q is not %s", prefix, k.Value, val.Line, val.Value, kindOf(f.Type())))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// kindOf says in words what a setting of type t takes.
func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "text"
	}
	return "a valid value"
}
