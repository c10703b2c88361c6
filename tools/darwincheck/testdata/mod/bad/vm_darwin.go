//go:build darwin

// Package main misuses vz/v3: darwincheck must reject it (a linux go build cannot see it).
package main

import (
	"fmt"

	"github.com/Code-Hex/vz/v3"
)

func main() {
	boot, err := vz.NewLinuxBootLoader("/kernel", vz.WithCommandLine("console=hvc0"), vz.WithInitrd("/initrd"))
	if err != nil {
		panic(err)
	}
	cfg, err := vz.NewVirtualMachineConfiguration(boot, "2", 512<<20)
	if err != nil {
		panic(err)
	}
	sock, err := vz.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		panic(err)
	}
	cfg.SetSocketDevicesVirtualMachineConfiguration([]vz.SocketDeviceConfiguration{sock})
	machine, err := vz.NewVirtualMachine(cfg)
	if err != nil {
		panic(err)
	}
	var port int = 1024
	conn, err := machine.SocketDevices()[0].Connect(port)
	fmt.Println(conn, err, answer())
}
