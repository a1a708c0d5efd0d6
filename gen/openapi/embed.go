// Package openapi embeds the OpenAPI v2 document generated from api/proto (pipeline.swagger.json),
// which the server serves at /openapi.json. This file is written by hand; the JSON is generated.
package openapi

import _ "embed"

// Document is the OpenAPI v2 (Swagger) JSON of the REST API.
//
//go:embed pipeline.swagger.json
var Document []byte
