//go:build !linux

package codetrim

import "errors"

// Release does nothing outside Linux, where there is no /proc/self/smaps.
func Release() (Stats, error) {
	return Stats{}, errors.ErrUnsupported
}
