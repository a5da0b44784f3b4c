// Package proccpu reads the CPU time the running process has used, for
// benchmarks that report CPU per operation: on a machine shared with
// other work, the CPU a request costs varies far less with the load than
// its wall time.
package proccpu
