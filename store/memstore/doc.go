// Package memstore is an in-memory [store.Store]: every account,
// mailbox, message body, collection, record and feed subscription lives
// in the process's memory and nothing is ever written to disk.
//
// It is meant for tests of the packages that consume a store (directory,
// routing, SMTP, IMAP handlers) where durability is not what is tested,
// for examples, and for programs that embed Mailyard and want no disk at
// all. It passes the same conformance suite as the SQLite backend
// ([storetest.Run]); [storetest.RunReopen] does not apply, because there
// is nothing to reopen.
//
// # Guarantees
//
// Every guarantee of the store package holds except durability (guarantee
// 1): a change is visible to every caller once its call returns, and is
// lost when the Store is closed or the process exits. Each call is one
// atomic step under a single lock, so [Store.Deliver] is all-or-nothing
// for its recipients, quotas are checked in the step that adds, and the
// feed publishes in commit order. Message bodies are held as byte slices:
// Append and Deliver read the whole body into memory, so the caller bounds
// its size (the IMAP and SMTP servers do, with their literal and message
// size limits). With no disk there is no store.ErrNoSpace; the other
// sentinel errors mean what the store package says (ErrNoMailbox,
// ErrNoMessage, ErrNotFound, ...).
//
// A Store is safe for concurrent use. Close ends every feed subscription;
// a subscription also ends when the context given to Subscribe is done, so
// no goroutine outlives them.
package memstore
