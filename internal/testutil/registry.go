package testutil

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry starts an in-process OCI registry (go-containerregistry's pkg/registry, in memory) on
// 127.0.0.1 with the test images pushed — busybox:latest (amd64 + arm64 index) and
// multilayer:latest — and returns its host, "127.0.0.1:PORT". Pull "HOST/busybox:latest" over plain
// HTTP. It stops when the test ends; skips the test when the .debs are missing.
func Registry(t testing.TB) string {
	t.Helper()
	imgs := BusyboxImages(t)
	srv := httptest.NewServer(RegistryHandler())
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	if err := PushImages(context.Background(), host, imgs); err != nil {
		t.Fatalf("pushing test images: %v", err)
	}
	return host
}

// RegistryHandler returns an empty in-memory registry that logs nothing. Wrap it to observe or
// disturb requests in a test.
func RegistryHandler() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

// PushImages pushes the test images to the registry at host as busybox:latest and multilayer:latest.
func PushImages(ctx context.Context, host string, imgs *Images) error {
	if err := PushIndex(ctx, host+"/busybox:latest", imgs.Busybox); err != nil {
		return err
	}
	return PushImage(ctx, host+"/multilayer:latest", imgs.Multilayer)
}

// PushImage pushes one image to ref (a plain-HTTP registry on a loopback address).
func PushImage(ctx context.Context, ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// PushIndex pushes an image index and its images to ref.
func PushIndex(ctx context.Context, ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// ServeRegistry serves an in-memory registry on addr ("127.0.0.1:0" picks a port) with the test
// images from debDir pushed, for tools outside `go test` (cmd/skiff-testregistry). It returns the
// host once the images are pushed; the server runs until ctx ends, then serve's result is sent on done.
func ServeRegistry(ctx context.Context, addr, debDir string) (host string, done <-chan error, err error) {
	imgs, err := BuildImages(debDir)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: RegistryHandler()}
	ch := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if err == http.ErrServerClosed {
			err = nil
		}
		ch <- err
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	host = ln.Addr().String()
	if err := PushImages(ctx, host, imgs); err != nil {
		srv.Close()
		return "", nil, err
	}
	return host, ch, nil
}
