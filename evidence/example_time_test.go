package evidence_test

import (
	"fmt"
	"time"

	"github.com/keytrail/keytrail/evidence"
)

func ExampleParseTime() {
	t, err := evidence.ParseTime("2026-03-02T09:00:00Z")
	fmt.Println(t, err)

	// Each instant has one spelling: no offsets, no trailing zeros.
	for _, s := range []string{"2026-03-02T10:00:00+01:00", "2026-03-02T09:00:00.000Z"} {
		_, err := evidence.ParseTime(s)
		fmt.Println(err)
	}
	// Output:
	// 2026-03-02 09:00:00 +0000 UTC <nil>
	// time "2026-03-02T10:00:00+01:00" is not canonical RFC 3339 UTC (want "2026-03-02T09:00:00Z")
	// time "2026-03-02T09:00:00.000Z" is not canonical RFC 3339 UTC (want "2026-03-02T09:00:00Z")
}

func ExampleWindow_Contains() {
	w := evidence.Window{Start: "2026-03-02T09:00:00Z", End: "2026-03-09T09:00:00Z"}
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	// Both ends are inside the window.
	fmt.Println(w.Contains(start), w.Contains(start.Add(7*24*time.Hour)))
	fmt.Println(w.Contains(start.Add(-time.Nanosecond)), w.Contains(start.Add(7*24*time.Hour+time.Nanosecond)))
	// Output:
	// true true
	// false false
}
