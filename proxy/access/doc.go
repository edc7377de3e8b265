// Package access holds authgate's pure access decisions: which post-login
// redirect targets are safe, what canonical path a request has, which paths
// are public, which users a policy admits, which route (with its CEL rule)
// decides a request, and which X-Forwarded-* headers are believed. It does
// no I/O and imports no other authgate package, so every decision can be
// table-tested and fuzzed on its own.
//
// Each function here fails closed: input that is ambiguous, malformed or
// merely unusual is refused (SafeRedirect returns "/", NormalizePath an
// error, Match and Allow false, a route's rule that fails to evaluate
// false, Forwarded the request's own values). The
// tests name the peer advisories whose tricks they replay, among them
// oauth2-proxy GHSA-qqxw-m5fj-f7gv ("/\evil.com"), GHSA-j7px-6hwj-hpjg
// (whitespace between slashes), GHSA-5m6c-jp6f-2vcv (dot segments between
// slashes), GHSA-4mf2-f3wh-gvf2 (".example.com" matching "badexample.com"),
// GHSA-7rh7-c77v-6434 (skip-auth rules matched against the query),
// GHSA-pxq7-h93f-9jrg (fragments in the request target), GHSA-7x63-xv5r-3p2x
// (X-Forwarded-Uri believed from any client) and GHSA-c5c4-8r6x-56w3
// ("a@evil.com@company.com" passing a domain check), and vouch-proxy #335
// ("example.com.evil.com" passing a domain check).
package access
