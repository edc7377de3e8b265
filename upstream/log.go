package upstream

// Attribute keys of every log line this package writes.
const (
	attrRequestID = "request_id"
	attrMethod    = "method"
	attrPath      = "path"
	attrStatus    = "status"
	attrError     = "error"
)
