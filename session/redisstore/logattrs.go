package redisstore

// Attribute keys of every log line this package writes.
const (
	attrError     = "error"
	attrSessionID = "session_id"
	attrRetryIn   = "retry_in"
	attrLoaded    = "loaded"
	attrDetail    = "detail"
)
