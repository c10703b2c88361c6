// Package hostproc is a test and development "hypervisor": it runs the guest
// agent as an ordinary host process (`skiff-agent --listen unix:… --root …
// --share tag=path…`) instead of booting a VM, so engine tests exercise the
// real agent in well under a second. Linux only; it needs root like the agent
// in host mode, and it isolates nothing: never use it to run untrusted images.
//
// Machine semantics match the VM backends: Dial opens one agent connection
// per stream, Stop(ctx, false) sends the agent SIGTERM and kills it when ctx
// ends (vm.Shutdown asks the agent first), Stop(ctx, true) kills the process tree, Pause/Resume send
// SIGSTOP/SIGCONT to the agent's process tree, Done closes when it exited.
//
//	hv, _ := hostproc.New(hostproc.Options{})
//	m, _ := hv.Start(ctx, vm.MachineSpec{ID: "c1", StateDir: dir,
//		Shares: []vm.Share{{Tag: "rootfs", HostPath: rootfs}}})
package hostproc
