package queue

// Kick wakes the scheduler, for tests that move its clock.
func (q *Queue) Kick() { q.kick() }
