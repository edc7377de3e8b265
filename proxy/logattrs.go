package proxy

// Attribute keys of every log line this package writes, in one place so that
// dashboards and queries can rely on them.
const (
	attrRequestID = "request_id"
	attrMethod    = "method"
	attrPath      = "path"
	attrStatus    = "status"
	attrReason    = "reason"
	attrError     = "error"
	attrSession   = "session"
	attrSubject   = "sub"
	attrRemote    = "remote_addr"
	attrRoute     = "route"
)
