package idp

// Log attribute keys, snake_case. No attribute ever carries a token.
const (
	keyIssuer                   = "issuer"
	keyAttempt                  = "attempt"
	keyRetryIn                  = "retry_in"
	keyError                    = "error"
	keyEndSession               = "end_session_endpoint"
	keyRevocation               = "revocation_endpoint"
	keyBackchannelLogout        = "backchannel_logout_supported"
	keyBackchannelLogoutSession = "backchannel_logout_session_supported"
	keySubject                  = "sub"
	keyTokens                   = "tokens"
	keyUserinfo                 = "userinfo"
	keyHint                     = "hint"
)
