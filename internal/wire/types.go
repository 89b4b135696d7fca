package wire

// The request body of POST /v1/submit is provision.Batch.

// Rejection is one event of a batch that was not accepted.
type Rejection struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// SubmitAnswer is the 200 answer to a submission. Duplicate stays the last
// field: a resend is answered with the stored bytes of the first answer
// with that flag turned on (see MarkDuplicate).
type SubmitAnswer struct {
	BatchID   string      `json:"batch_id"`
	Accepted  int         `json:"accepted"`
	Rejected  []Rejection `json:"rejected"`
	Duplicate bool        `json:"duplicate"`
}

// DeletionRequest is the body of POST /v1/deletion (and of the operator's
// /v1/admin/erase, where request_id may be empty).
type DeletionRequest struct {
	InstallationID string `json:"installation_id"`
	RequestID      string `json:"request_id"`
}

// DeletionAnswer is the 202 answer of POST /v1/deletion: status is
// complete when the erasure finished within the request, pending when it
// is durable and will be finished.
type DeletionAnswer struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// ErrorBody is the body of every answer other than 2xx.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what ErrorBody carries: a machine code and a message for
// people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
