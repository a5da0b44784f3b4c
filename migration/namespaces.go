package migration

// Record namespaces of the migration package. Keys of the collector
// namespaces start with the canonical target address; keySep separates
// the parts of composite keys.
const (
	// nsCollector: key target -> collectorRecord (job and status).
	nsCollector = "migration.collector"
	// nsFolder: key target<sep>sourceFolder -> folderRecord (checkpoint).
	nsFolder = "migration.folder"
	// nsMsg: key target<sep>sourceFolder<sep>UIDVALIDITY<sep>UID (both
	// 8 hex digits, so keys sort by UID) -> msgRecord. One small record
	// per copied message keeps every checkpoint O(1).
	nsMsg = "migration.msg"
	// nsLease: key target -> the lease of the pass copying into it
	// (lease.go).
	nsLease = "migration.lease"
	// nsRun holds one record per run under runKey(ID) (history.go).
	nsRun = "migration.run"
	// nsRunMailbox holds one record per mailbox of a run under
	// runMailboxKey(ID, target).
	nsRunMailbox = "migration.runmbx"
	// nsPassStatus: key target -> PassStatus, the status of the passes a
	// run's own Pass (another protocol than IMAP) made for the target.
	nsPassStatus = "migration.passstatus"
)

// Namespaces returns the [store.Records] namespaces the migration package
// owns, for a check that no two owners claim one.
func Namespaces() []string {
	return []string{nsCollector, nsFolder, nsMsg, nsLease, nsRun, nsRunMailbox, nsPassStatus}
}
