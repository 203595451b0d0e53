package wire

// The headers server and client agree on (besides HeaderRequestID).
const (
	// HeaderAPIKey carries the API key ("Authorization: Bearer <key>" is accepted too).
	HeaderAPIKey = "X-API-Key"
	// HeaderIdempotencyKey makes a retried create return the first attempt's session.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderActor names the tool behind an authenticated caller, so durable events tell
	// Terraform's changes from other API calls.
	HeaderActor = "X-Hyperbola-Actor"
)
