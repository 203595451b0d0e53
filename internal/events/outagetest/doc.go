// Package outagetest holds the test that kills the Firestore emulator in the middle of a run.
// It is a package of its own because testenv starts one emulator per test package: killing it
// would break every other test of internal/events.
package outagetest
