// Package cputime reads the CPU time the process has used, for
// benchmarks that report it per operation (cpu-ns/op): on a machine
// shared with other jobs the load changes it far less than wall time.
package cputime
