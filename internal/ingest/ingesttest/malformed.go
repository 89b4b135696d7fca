package ingesttest

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// Malformed is one kind of input the strict decoder refuses or rejects,
// made from a valid batch (as Batch and JSON build it).
type Malformed struct {
	Name string
	Body func(valid []byte) []byte
	// Code is the error code of the refusal of the whole batch (400), or
	// "" when the batch is taken with one event rejected with Reject.
	Code   string
	Reject string
}

// MalformedCases lists every kind of malformed input with the code it
// must get: the strict decoder's unit tests, its fuzz seeds and the attack
// suite all use this one list.
func MalformedCases() []Malformed {
	return []Malformed{
		{"duplicate envelope key", replace(`"batch_id":`, `"installation_id":"0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e","batch_id":`), "duplicate_key", ""},
		{"duplicate key in event", replace(`"type":"task"`, `"type":"task","type":"task"`), "duplicate_key", ""},
		{"duplicate field", replace(`"task.type":`, `"task.status":"success","task.type":`), "duplicate_key", ""},
		{"duplicate key by escape", replace(`"batch_id":`, `"batch\u005fid":"x","batch_id":`), "duplicate_key", ""},
		{"envelope key in upper case", replace(`"batch_id":`, `"BATCH_ID":`), "key_case", ""},
		{"envelope key in mixed case", replace(`"installation_id":`, `"Installation_Id":`), "key_case", ""},
		{"event key in wrong case", replace(`"type":"task"`, `"Type":"task"`), "key_case", ""},
		{"escaped lone high surrogate", replace(`"Secure Connection"`, `"Secure \ud800Connection"`), "bad_encoding", ""},
		{"escaped lone low surrogate", replace(`"Secure Connection"`, `"Secure \udc00Connection"`), "bad_encoding", ""},
		{"raw surrogate (CESU-8)", replace(`"Secure Connection"`, "\"Secure \xed\xa0\x80Connection\""), "bad_encoding", ""},
		{"invalid UTF-8", replace(`"Secure Connection"`, "\"Secure\xff\xfeConnection\""), "bad_encoding", ""},
		{"negative zero", replace(`"event.count":`, `"event.count":-0,"x":`), "non_canonical_number", ""},
		{"integer with fraction", replace(`"event.count":`, `"event.count":3.0,"x":`), "non_canonical_number", ""},
		{"integer with exponent", replace(`"event.count":`, `"event.count":3e0,"x":`), "non_canonical_number", ""},
		{"integer with huge exponent", replace(`"event.count":`, `"event.count":1e400,"x":`), "non_canonical_number", ""},
		{"unknown manifest version", replace(`"manifest_version":"2026.11.1"`, `"manifest_version":"1999.1.1"`), "unknown_manifest_version", ""},
		{"sent_at decades away", func(v []byte) []byte { return regexpReplace(v, `"sent_at":"[0-9]{4}`, `"sent_at":"1996`) }, "bad_sent_at", ""},
		{"sent_at not a time", func(v []byte) []byte { return regexpReplace(v, `"sent_at":"[0-9-]{10}T`, `"sent_at":"2026-11-28 `) }, "bad_sent_at", ""},
		{"sent_at missing", replace(`"sent_at":`, `"x_sent_at":`), "unknown_field", ""},
		{"nil installation id", installation("00000000-0000-0000-0000-000000000000"), "wrong_type", ""},
		{"all-zero v4 installation id", installation("00000000-0000-4000-8000-000000000000"), "bad_installation_id", ""},
		{"version 1 installation id", installation("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "wrong_type", ""},
		{"array instead of batch", func([]byte) []byte { return []byte(`[]`) }, "bad_json", ""},
		{"trailing data", func(v []byte) []byte { return append(bytes.Clone(v), "{}"...) }, "bad_json", ""},
		{"truncated", func(v []byte) []byte { return v[:len(v)/2] }, "bad_json", ""},
		{"deep undeclared value", replace(`"task.type":`, `"x":[[[[[[[[[[1]]]]]]]]]],"task.type":`), "too_deep", ""},
		// Taken batches with one event rejected.
		{"fraction for an integer item", func(v []byte) []byte { return regexpReplace(v, `"event.count":[0-9]+`, `"event.count":1.5`) }, "", "wrong_type"},
		{"undeclared field", replace(`"task.type":`, `"user.email":"a@b.example","task.type":`), "", "undeclared_field"},
		{"object value", replace(`"os.type":"windows"`, `"os.type":{"a":1}`), "", "wrong_type"},
		{"event not an object", replace(`"events":[`, `"events":[7,`), "", "malformed_event"},
		{"unknown event key", replace(`"type":"task"`, `"type":"task","ip":"192.0.2.1"`), "", "malformed_event"},
		{"event time not a time", replace(`"type":"task","time":"20`, `"type":"task","time":"x20`), "", "malformed_event"},
	}
}

func replace(old, new string) func([]byte) []byte {
	return func(valid []byte) []byte {
		if !bytes.Contains(valid, []byte(old)) {
			panic("ingesttest: batch does not contain " + old)
		}
		return bytes.Replace(valid, []byte(old), []byte(new), 1)
	}
}

func regexpReplace(v []byte, expr, with string) []byte {
	loc := regexp.MustCompile(expr).FindIndex(v)
	if loc == nil {
		panic("ingesttest: batch does not match " + expr)
	}
	return append(append(append([]byte{}, v[:loc[0]]...), with...), v[loc[1]:]...)
}

// installation sets the batch's installation id.
func installation(id string) func([]byte) []byte {
	return func(valid []byte) []byte {
		var env map[string]json.RawMessage
		if err := json.Unmarshal(valid, &env); err != nil {
			panic(err)
		}
		old := `"installation_id":` + string(env["installation_id"])
		return bytes.Replace(valid, []byte(old), []byte(`"installation_id":"`+id+`"`), 1)
	}
}
