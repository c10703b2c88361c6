//go:build linux

package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// Networks are records of the data dir: created, listed, inspected, refused when in use, kept with
// their containers' addresses across an engine restart, removed.
func TestNetworkRecords(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, time.Minute)
	e := f.e
	nets, err := e.ListNetworks(ctx)
	if err != nil || len(nets) != 1 || nets[0].Name != DefaultNetwork || nets[0].Subnet != "172.17.0.0/16" {
		t.Fatalf("a new engine's networks: %+v %v", nets, err)
	}
	n, err := e.CreateNetwork(ctx, NetworkCreateOptions{Name: "app", Labels: map[string]string{"com.example": "x"}})
	if err != nil || n.Subnet != "172.18.0.0/16" || n.Gateway != "172.18.0.1" {
		t.Fatalf("create: %+v %v", n, err)
	}
	for name, o := range map[string]NetworkCreateOptions{
		"a taken name":       {Name: "app"},
		"the default's name": {Name: "bridge"},
		"host":               {Name: "host"},
		"a bad name":         {Name: "-x"},
		"a bad subnet":       {Name: "x", Subnet: "10.1.0.0"},
		"the VMs' link":      {Name: "x", Subnet: "10.0.0.0/16"},
		"an overlap":         {Name: "x", Subnet: "172.18.5.0/24"},
		"another driver":     {Name: "x", Driver: "overlay"},
	} {
		if _, err := e.CreateNetwork(ctx, o); err == nil {
			t.Errorf("%s: created", name)
		}
	}
	if _, err := e.InspectNetwork(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("inspect of a missing network: %v", err)
	}

	web, err := e.Create(ctx, CreateOptions{Image: f.ref, Name: "web", Networks: []NetworkOptions{{Network: "app", Aliases: []string{"www", "my_service"}}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := e.Create(ctx, CreateOptions{Image: f.ref, Name: "db", Networks: []NetworkOptions{{Network: n.ID[:12]}}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.Create(ctx, CreateOptions{Image: f.ref, Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if got := web.Networks; len(got) != 1 || got[0].IPAddress != "172.18.0.2" || got[0].NetworkID != n.ID || !slices.Equal(got[0].Aliases, []string{"www", "my_service"}) {
		t.Fatalf("web's networks: %+v", got)
	}
	if got := db.Networks; len(got) != 1 || got[0].IPAddress != "172.18.0.3" {
		t.Fatalf("db's networks: %+v", got)
	}
	if got := plain.Networks; len(got) != 1 || got[0].Network != DefaultNetwork || got[0].IPAddress != "172.17.0.2" {
		t.Fatalf("plain's networks: %+v", got)
	}
	if _, err := e.Create(ctx, CreateOptions{Image: f.ref, Networks: []NetworkOptions{{Network: "app", Aliases: []string{"has space"}}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("create with a bad alias: %v", err)
	}
	if _, err := e.Create(ctx, CreateOptions{Image: f.ref, Networks: []NetworkOptions{{Network: "missing"}}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("create on a missing network: %v", err)
	}
	if _, err := e.Create(ctx, CreateOptions{Image: f.ref, Networks: []NetworkOptions{{Network: "app", IPAddress: "172.18.0.2"}}}); !errors.Is(err, ErrConflict) {
		t.Errorf("create at a taken address: %v", err)
	}
	if err := e.RemoveNetwork(ctx, "app"); !errors.Is(err, ErrConflict) {
		t.Errorf("removing a network in use: %v", err)
	}
	if err := e.RemoveNetwork(ctx, DefaultNetwork); !errors.Is(err, ErrConflict) {
		t.Errorf("removing the default network: %v", err)
	}
	if err := e.ConnectNetwork(ctx, DefaultNetwork, "web", NetworkOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.ConnectNetwork(ctx, "app", "web", NetworkOptions{}); !errors.Is(err, ErrConflict) {
		t.Errorf("connecting twice: %v", err)
	}

	// An engine restart keeps the networks, the containers' attachments and their addresses.
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Close(cctx); err != nil {
		t.Fatal(err)
	}
	f.e = f.open(testHypervisor(t))
	e = f.e
	got, err := e.InspectNetwork(ctx, "app")
	if err != nil || got.ID != n.ID || got.Subnet != n.Subnet || got.Labels["com.example"] != "x" {
		t.Fatalf("after a restart: %+v %v", got, err)
	}
	w := f.inspect("web")
	if len(w.Networks) != 2 || w.Networks[0].IPAddress != "172.18.0.2" || w.Networks[1].IPAddress != "172.17.0.3" {
		t.Fatalf("web's networks after a restart: %+v", w.Networks)
	}
	// The addresses are still taken: a new container gets the next one.
	c4, err := e.Create(ctx, CreateOptions{Image: f.ref, Networks: []NetworkOptions{{Network: "app"}}})
	if err != nil || c4.Networks[0].IPAddress != "172.18.0.4" {
		t.Fatalf("a new container after a restart: %+v %v", c4, err)
	}
	if users := e.NetworkContainers(ctx, n.ID); len(users) != 3 {
		t.Errorf("app's containers: %d, want 3", len(users))
	}
	if err := e.DisconnectNetwork(ctx, "app", "web", false); err != nil {
		t.Fatal(err)
	}
	if err := e.DisconnectNetwork(ctx, "app", "web", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("disconnecting twice: %v", err)
	}
	for _, id := range []string{"db", c4.ID} {
		if err := e.Remove(ctx, id, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.RemoveNetwork(ctx, "app"); err != nil {
		t.Fatalf("removing a network nobody uses: %v", err)
	}
	if _, err := e.InspectNetwork(ctx, n.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a removed network: %v", err)
	}
}
