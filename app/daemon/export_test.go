package daemon

// HostprocBuilt tells the external tests whether this test binary has the hostproc backend.
const HostprocBuilt = hostprocBuilt
