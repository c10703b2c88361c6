// Package agent is Skiff's guest agent. It serves the agentproto operations
// (run, exec, stdio, signals, port forwards, mounts, stats, ...) on streams,
// one operation per stream, many at once.
//
// It runs in one of two modes, chosen by cmd/skiff-agent:
//
//   - VM mode, as PID 1 of a Skiff VM (VMMain): it mounts /proc, /sys, /dev,
//     loads kernel modules, seeds entropy, sets the clock, brings up the
//     network, mounts the container rootfs share and serves the host over
//     virtio-serial (yamux) or vsock.
//   - Host mode, as an ordinary root process on a Linux host (HostMain): it
//     listens on a unix socket with a rootfs directory. Tests use this mode.
//
// In both modes the workload is PID 1 of its own PID namespace (with its own
// mount, UTS and IPC namespaces), pivot_rooted into the container root with
// /proc, /dev and /sys inside. Exec'd processes join all of those
// namespaces (setns from a locked thread) and so the same root.
//
//	a, err := agent.New(agent.Config{Root: "/srv/rootfs", Log: log})
//	err = a.Serve(ctx, listener)
package agent
