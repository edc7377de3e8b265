package idp

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// promptValues are the "prompt" values of OpenID Connect Core 3.1.2.1.
var promptValues = []string{"none", "login", "consent", "select_account"}

// reservedAuthParams are the authorization request parameters authgate sets
// itself, or that would replace the whole request (request, request_uri:
// JAR, RFC 9101) or change how the answer travels (response_mode). An extra
// parameter may not name them.
var reservedAuthParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "request",
	"request_uri", "response_mode",
}

// CheckPrompt checks an OpenID Connect "prompt" value (Core 3.1.2.1): one
// or more of none, login, consent and select_account, separated by spaces,
// each at most once; "none" stands alone. The empty string is valid and
// sends no prompt.
func CheckPrompt(prompt string) error {
	values := strings.Fields(prompt)
	var problems []error
	for i, v := range values {
		if !slices.Contains(promptValues, v) {
			problems = append(problems, fmt.Errorf("%q is not one of none, login, consent, select_account", v))
		} else if slices.Contains(values[:i], v) {
			problems = append(problems, fmt.Errorf("%q given twice", v))
		}
	}
	if slices.Contains(values, "none") && len(values) > 1 {
		problems = append(problems, errors.New(`"none" cannot be combined with other values`))
	}
	return errors.Join(problems...)
}

// CheckAuthParams checks extra authorization request parameters: names
// not empty and none that authgate sets itself (CheckAuthParams names it).
func CheckAuthParams(params url.Values) error {
	var problems []error
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case name == "":
			problems = append(problems, errors.New("a parameter has no name"))
		case slices.Contains(reservedAuthParams, strings.ToLower(name)):
			hint := ""
			switch strings.ToLower(name) {
			case "prompt":
				hint = " (use AUTHGATE_PROMPT)"
			case "scope":
				hint = " (use AUTHGATE_SCOPES)"
			}
			problems = append(problems, fmt.Errorf("parameter %q is set by authgate itself%s", name, hint))
		}
	}
	return errors.Join(problems...)
}

// ParseAuthParams parses extra authorization request parameters written in
// URL query form, "access_type=offline&audience=https%3A%2F%2Fapi" (values
// percent-encoded where they contain & = + % or #; a name may repeat, as
// RFC 8707's resource may), and checks them with CheckAuthParams.
func ParseAuthParams(raw string) (url.Values, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("not in query form k=v&k2=v2: %w", err)
	}
	for _, part := range strings.Split(raw, "&") {
		if part != "" && !strings.Contains(part, "=") {
			return nil, fmt.Errorf("%q has no =value", truncate(part, 40))
		}
	}
	if err := CheckAuthParams(params); err != nil {
		return nil, err
	}
	return params, nil
}
