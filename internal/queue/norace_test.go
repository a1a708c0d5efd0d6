//go:build !race

package queue_test

// raceEnabled: built with the race detector, whose scheduler is randomized.
const raceEnabled = false
