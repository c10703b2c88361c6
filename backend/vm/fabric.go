package vm

import "github.com/skiff-containers/skiff/backend/vm/internal/usernet"

// Fabric joins the user-space networks of the engine's VMs into container
// networks (segments): one per engine process, shared by every machine
// whose Network names it. A member (a container ID) is attached to a
// segment at an address of the segment's subnet with its DNS names; each
// running member's gateway then answers those names to the other members
// of its segments and carries their TCP connections and UDP flows into the
// member's VM. Members of different segments cannot reach each other. See
// usernet.Fabric; QEMU only (vz machines keep Apple's NAT).
type Fabric = usernet.Fabric

// FabricEndpoint is a member's attachment to one segment: the segment
// (network) ID, its subnet, the member's address in it and its names.
type FabricEndpoint = usernet.Endpoint

// NewFabric returns an empty fabric.
func NewFabric() *Fabric { return usernet.NewFabric() }

// HostAlias is the name that resolves, in every QEMU guest on the NAT
// network, to the address standing for the host's loopback (HostLoopbackAddr).
const HostAlias = "host.docker.internal"
