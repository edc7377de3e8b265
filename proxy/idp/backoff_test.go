package idp

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{name: "defaults", min: defaultDiscoveryRetryMin, max: defaultDiscoveryRetryMax},
		{name: "milliseconds", min: time.Millisecond, max: 8 * time.Millisecond},
		{name: "min equals max", min: time.Second, max: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Provider{retryMin: tt.min, retryMax: tt.max}
			for attempt := 1; attempt <= 100; attempt++ {
				step := min(tt.max, tt.min<<min(attempt-1, 30))
				got := p.backoff(attempt)
				if got < tt.min || got > tt.max {
					t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, got, tt.min, tt.max)
				}
				if got < step/2 || got > step {
					t.Fatalf("backoff(%d) = %s, want within [%s, %s] (half to full step)", attempt, got, step/2, step)
				}
			}
		})
	}
}
