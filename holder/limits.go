package holder

// How many entries and connections fit the process's descriptor limit.

// fdReserve is how many descriptors fitLimits leaves for everything but
// entries and connections: standard streams, the runtime's poller, the
// listening socket, the connection the accept loop is sorting out and one
// it refuses in passing.
const fdReserve = 32

// slots are how many connections of each sort beyond MaxConns a server
// keeps at once: maxNoRights, ownerReserve and maxLingers, lowered by
// fitLimits under a small limit on open descriptors.
type slots struct {
	noRights     int // of peers no rule grants anything
	ownerReserve int // of the holder's own user, beyond MaxConns
	lingers      int // refused and lingering (see linger)
}

// Descriptors a connection may hold at once. A served one: its socket, and
// what its reads may hold — a request carries at most one descriptor, and
// an fdsend.Conn under that read limit receives at most one per system
// call and holds at most two (the message's and the next one's) besides.
// A lingering one reads with a limit of none, so the kernel installs none,
// but it is made a Conn from a bare descriptor by duplicating it (connOf),
// so it holds two for a moment.
const (
	servedCost = 1 + 3
	lingerCost = 2
)

// fitLimits fits everything a holder can be made to hold at once in limit
// open descriptors (RLIMIT_NOFILE; 0 when unknown), with fdReserve to
// spare: the entries, and the connections of every sort with what each may
// hold (servedCost, lingerCost). A holder whose descriptor table filled up
// could no longer accept the connection that would empty it. When it does
// not fit, the slots beyond MaxConns are cut to a small share each, then
// connections get at most a quarter of what is left and entries the rest.
func fitLimits(cfg Config, limit int) (Config, slots) {
	sl := slots{noRights: maxNoRights, ownerReserve: ownerReserve, lingers: maxLingers}
	need := fdReserve + cfg.Max + servedCost*(cfg.MaxConns+sl.noRights+sl.ownerReserve) + lingerCost*sl.lingers
	if limit <= 0 || need <= limit {
		return cfg, sl
	}
	budget := max(limit-fdReserve, 0)
	sl = slots{
		noRights:     min(max(budget/32, 1), maxNoRights),
		ownerReserve: min(max(budget/32, 1), ownerReserve),
		lingers:      min(max(budget/(16*lingerCost), 1), maxLingers),
	}
	rest := budget - servedCost*(sl.noRights+sl.ownerReserve) - lingerCost*sl.lingers
	asked := cfg
	cfg.MaxConns = min(asked.MaxConns, max(1, rest/4/servedCost))
	cfg.Max = min(asked.Max, max(1, rest-servedCost*cfg.MaxConns))
	if cfg.Logf != nil {
		cfg.Logf("only %d descriptors may be open (RLIMIT_NOFILE): holding at most %d entries and serving %d connections at once (not %d and %d), %d more of the holder's own user, %d of users without rights, and letting %d refused connections linger", limit, cfg.Max, cfg.MaxConns, asked.Max, asked.MaxConns, sl.ownerReserve, sl.noRights, sl.lingers)
	}
	return cfg, sl
}

// maxNoRights is how many connections of peers that may do nothing are
// served at once, apart from MaxConns.
const maxNoRights = 32

// ownerReserve is how many connections beyond MaxConns the holder's own
// user may open, so that others filling the slots cannot lock it out.
const ownerReserve = 16
