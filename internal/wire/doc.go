// Package wire is the agent–server contract in one place: the request and
// answer bodies of /v1/submit and /v1/deletion, the error body and its
// codes, the writer servers answer with, and the client's half — reading a
// Retry-After, sorting an answer or a transport error into retryable and
// permanent, and the one backoff policy every sender retries with.
//
// The contract is documented in api/openapi.yaml; machines match on the
// codes, so a code never changes meaning once published.
package wire
