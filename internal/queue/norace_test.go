//go:build !race

package queue_test

// raceEnabled: false, built without the race detector.
const raceEnabled = false
