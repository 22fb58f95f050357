// Package sync is the engine: it plans each month, writes through the
// create and update protocols, recovers pending batches, and keeps the
// watermarks. It sees the outside world only through the Source, Sink and
// Checkpoints interfaces defined here.
//
// The package name shadows the standard library's; import that one as
// stdsync.
package sync
