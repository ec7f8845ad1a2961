package notify

// clockMonotonic is CLOCK_MONOTONIC in NetBSD's <time.h> (x/sys/unix does
// not define it there).
const clockMonotonic = 3
