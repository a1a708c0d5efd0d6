package openapi

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1" // registers the messages the examples are checked against
)

// This file is written by hand. It checks that the OpenAPI document is complete enough for a
// REST user: every operation, schema and property is described, every request body that has
// fields comes with an example, and every example is a valid message (protojson, no unknown
// fields), so an example cannot drift from the API.

type schema struct {
	Ref         string            `json:"$ref"`
	Description string            `json:"description"`
	Title       string            `json:"title"`
	Properties  map[string]schema `json:"properties"`
	Example     json.RawMessage   `json:"example"`
}

type document struct {
	Paths map[string]map[string]struct {
		Summary     string `json:"summary"`
		Description string `json:"description"`
		Parameters  []struct {
			In     string `json:"in"`
			Schema schema `json:"schema"`
		} `json:"parameters"`
	} `json:"paths"`
	Definitions map[string]schema `json:"definitions"`
}

// fromGoogle are the definitions that come from google's protos, not ours.
var fromGoogle = map[string]bool{"protobufAny": true, "rpcStatus": true}

func load(t *testing.T) document {
	t.Helper()
	var d document
	if err := json.Unmarshal(Document, &d); err != nil {
		t.Fatalf("the embedded document is not JSON: %v", err)
	}
	if len(d.Paths) == 0 || len(d.Definitions) == 0 {
		t.Fatal("the embedded document has no paths or definitions")
	}
	return d
}

func TestEverythingDescribed(t *testing.T) {
	d := load(t)
	for path, ops := range d.Paths {
		for method, op := range ops {
			if op.Summary == "" && op.Description == "" {
				t.Errorf("%s %s has no description: comment the RPC in its .proto", method, path)
			}
		}
	}
	for name, s := range d.Definitions {
		if fromGoogle[name] {
			continue
		}
		if s.Description == "" && s.Title == "" {
			t.Errorf("definition %s has no description: comment the message in its .proto", name)
		}
		for prop, p := range s.Properties {
			if p.Description == "" && p.Title == "" {
				t.Errorf("%s.%s has no description: comment the field in its .proto", name, prop)
			}
		}
	}
}

func TestRequestBodiesHaveExamples(t *testing.T) {
	d := load(t)
	bodies := 0
	for path, ops := range d.Paths {
		for method, op := range ops {
			for _, p := range op.Parameters {
				if p.In != "body" {
					continue
				}
				name := strings.TrimPrefix(p.Schema.Ref, "#/definitions/")
				def, ok := d.Definitions[name]
				if !ok {
					t.Errorf("%s %s: body schema %q not defined", method, path, p.Schema.Ref)
					continue
				}
				if len(def.Properties) == 0 {
					continue // an empty body ({}), nothing to show
				}
				bodies++
				if len(def.Example) == 0 {
					t.Errorf("%s %s: body %s has no example: add an openapiv2_schema example to the request message", method, path, name)
				}
			}
		}
	}
	if bodies < 3 {
		t.Errorf("found %d request bodies with fields; expected CreateSource, IngestDocuments and Search at least", bodies)
	}
}

func TestExamplesAreValidMessages(t *testing.T) {
	d := load(t)
	checked := 0
	for name, s := range d.Definitions {
		if len(s.Example) == 0 {
			continue
		}
		msg := messageOf(name)
		if msg == "" {
			t.Errorf("definition %s has an example but no known message to check it against", name)
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(msg)
		if err != nil {
			t.Errorf("definition %s: message %s: %v", name, msg, err)
			continue
		}
		m := mt.New().Interface()
		if err := (protojson.UnmarshalOptions{}).Unmarshal(s.Example, m); err != nil {
			t.Errorf("example of %s is not a valid %s: %v", name, msg, err)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no examples found")
	}
}

// messageOf maps a definition name to its message: "v1Job" is pipeline.v1.Job, and a body schema
// such as "ContentServiceIngestDocumentsBody" is the request message without its path fields.
func messageOf(def string) protoreflect.FullName {
	if rest, ok := strings.CutPrefix(def, "v1"); ok {
		return protoreflect.FullName("pipeline.v1." + rest)
	}
	if strings.HasSuffix(def, "Body") {
		for _, svc := range []string{"ContentService", "JobService", "SearchService", "SystemService"} {
			if rpc, ok := strings.CutPrefix(def, svc); ok {
				return protoreflect.FullName("pipeline.v1." + strings.TrimSuffix(rpc, "Body") + "Request")
			}
		}
	}
	return ""
}
