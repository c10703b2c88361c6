package images_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

func TestMultilayerAndSharedBlobs(t *testing.T) {
	host, reqs := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	bb, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var prog progressLog
	img, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{Progress: prog.fn})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, s, img)
	want := images.ImageConfig{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"cat /data/b"},
		Env: []string{testutil.ImagePathEnv, "MULTI=1"}, WorkingDir: "/data", User: "app",
		StopSignal: "SIGINT", ExposedPorts: []string{"8080/tcp"}, Volumes: []string{"/data"},
		Labels: map[string]string{"dev.skiff.test": "multilayer"},
	}
	if !reflect.DeepEqual(img.Config, want) {
		t.Errorf("config %+v\nwant %+v", img.Config, want)
	}
	// The busybox layer is shared: downloaded once, reported as present, unpacked into both.
	layers, _ := testImages(t).BusyboxAMD64.Layers()
	base, _ := layers[0].Digest()
	if n := reqs.get("GET", "/blobs/"+base.String()); n != 1 {
		t.Errorf("shared layer downloaded %d times, want 1", n)
	}
	if got := prog.statuses(base.String()); !reflect.DeepEqual(got, []string{"waiting", "exists", "done"}) {
		t.Errorf("shared layer progress %v", got)
	}
	if in := dstat(t, diskOf(t, s, bb), "/data"); in != nil {
		t.Error("the multilayer image's files appeared in busybox's disk")
	}
	du, err := s.DiskUsage(ctx)
	if err != nil || du.Images != 2 || du.Disks != 2 || du.DisksSize == 0 || du.Blobs != 2*2+4 || du.Reclaimable != 0 ||
		du.Total != du.DisksSize+du.BlobsSize {
		t.Errorf("disk usage %+v, %v", du, err)
	}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	host, reqs := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t)
	const n = 4
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	progs := make([]progressLog, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			img, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{Progress: progs[i].fn})
			errs[i] = err
			if img != nil {
				ids[i] = img.ID
			}
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("pull %d: %s, %v", i, ids[i], errs[i])
		}
	}
	mf, _ := testImages(t).Multilayer.Manifest()
	for _, l := range mf.Layers {
		if c := reqs.get("GET", "/blobs/"+l.Digest.String()); c != 1 {
			t.Errorf("layer %s downloaded %d times", l.Digest, c)
		}
	}
	got := 0
	for i := range progs {
		got += len(progs[i].all)
	}
	if got == 0 {
		t.Error("no caller got progress")
	}
	if list, _ := s.List(ctx); len(list) != 1 {
		t.Errorf("%d images listed", len(list))
	}
}

// stall serves the blob with digest dg half-way, then holds the response until the client leaves.
type stall struct {
	dg      string
	started chan struct{}
	once    sync.Once
	on      atomic.Bool
}

func (st *stall) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !st.on.Load() || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+st.dg) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bufferedWriter{header: http.Header{}}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		w.Write(rec.body[:len(rec.body)/2])
		w.(http.Flusher).Flush()
		st.once.Do(func() { close(st.started) })
		<-r.Context().Done()
	})
}

type bufferedWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = 200
	}
	b.body = append(b.body, p...)
	return len(p), nil
}
func (b *bufferedWriter) WriteHeader(c int) { b.code = c }

func TestCancelAndResume(t *testing.T) {
	mf, _ := testImages(t).Multilayer.Manifest()
	last := mf.Layers[len(mf.Layers)-1].Digest.String()
	st := &stall{dg: last, started: make(chan struct{})}
	st.on.Store(true)
	host, reqs := registry(t, st.wrap)
	s := openStore(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	// The other layers are in the content store once they report "verifying".
	var mu sync.Mutex
	verified := map[string]bool{}
	othersDone := make(chan struct{})
	progress := func(p images.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Status == "verifying" && p.Layer != last && !verified[p.Layer] {
			verified[p.Layer] = true
			if len(verified) == len(mf.Layers)-1 {
				close(othersDone)
			}
		}
	}
	go func() {
		_, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{Progress: progress})
		errc <- err
	}()
	for _, ch := range []chan struct{}{st.started, othersDone} {
		select {
		case <-ch:
		case err := <-errc:
			t.Fatalf("pull ended before the stalled layer: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("the stalled layer was never requested, or the others never arrived")
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("after a cancelled pull List = %v, %v", list, err)
	}
	if _, err := s.Get(context.Background(), host+"/multilayer:latest"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Get after a cancelled pull: %v", err)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("a cancelled pull left %v", l)
	}

	// The next pull downloads only what is missing.
	st.on.Store(false)
	reqs.reset()
	img, err := s.Pull(context.Background(), host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range mf.Layers {
		want := 0
		if l.Digest.String() == last {
			want = 1
		}
		if c := reqs.get("GET", "/blobs/"+l.Digest.String()); c != want {
			t.Errorf("resumed pull downloaded layer %s %d times, want %d", l.Digest, c, want)
		}
	}
	checkTree(t, s, img)
}

// A crash mid-pull leaves an unpack directory and a partial download; neither lists, and Open
// removes them.
func TestCrashLeftoversAreCleaned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := images.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "images", ".unpack-0123456789ab-42", "rootfs", "bin")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "blobs", "ingest", "abc-1"), []byte("partial"), 0o644)
	// An image directory without its record (not committed) is not an image either.
	os.MkdirAll(filepath.Join(dir, "images", strings.Repeat("ab", 32), "rootfs"), 0o755)
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if _, err := images.Open(dir); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("Open left %v", l)
	}
}

func TestBadDigestFailsCleanly(t *testing.T) {
	imgs := testImages(t)
	cf, _ := imgs.Multilayer.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[2] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	bad, err := mutate.ConfigFile(imgs.Multilayer, cf)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := registry(t, nil)
	if err := testutil.PushImage(context.Background(), host+"/bad:latest", bad); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	_, err = s.Pull(ctxT(t), host+"/bad:latest", images.PullOptions{})
	if !errors.Is(err, images.ErrDigestMismatch) {
		t.Fatalf("pull with a wrong diff ID: %v", err)
	}
	if list, _ := s.List(context.Background()); len(list) != 0 {
		t.Errorf("listed after a failed pull: %v", list)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("a failed pull left %v", l)
	}
}
