package dockerapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// request decodes a create request as the docker CLI sends it.
func request(t *testing.T, js string) *container.CreateRequest {
	t.Helper()
	var req container.CreateRequest
	if err := json.Unmarshal([]byte(js), &req); err != nil {
		t.Fatalf("decoding %s: %v", js, err)
	}
	return &req
}

func TestCreateOptions(t *testing.T) {
	req := request(t, `{"Image":"busybox","Cmd":["httpd","-f"],"Env":["A=b"],"User":"1:2","WorkingDir":"/w",
		"Labels":{"k":"v"},"Tty":true,"OpenStdin":true,"Hostname":"h","StopSignal":"SIGINT","StopTimeout":3,
		"Entrypoint":["sh","-c"],"ExposedPorts":{"80/tcp":{}},
		"HostConfig":{"NetworkMode":"default","LogConfig":{"Type":"","Config":{}},
			"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"0"}],"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"81/tcp":[{"HostIp":"","HostPort":""}]},
			"Binds":["/srv:/www:ro"],"Mounts":[{"Type":"bind","Source":"/data","Target":"/d"}],
			"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"Memory":134217728,"NanoCpus":1500000000}}`)
	o, err := createOptions("/web", "linux/amd64", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := 3
	ep := []string{"sh", "-c"}
	want := engine.CreateOptions{Name: "web", Image: "busybox", Platform: "linux/amd64", Pull: "never",
		Entrypoint: &ep, Cmd: []string{"httpd", "-f"}, Env: []string{"A=b"}, WorkingDir: "/w", User: "1:2", Hostname: "h",
		Labels: map[string]string{"k": "v"}, TTY: true, OpenStdin: true,
		Ports: []engine.PortMapping{{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"},
			{ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 81, Proto: "tcp"}},
		Mounts: []engine.Mount{{Type: "bind", Source: "/srv", Target: "/www", ReadOnly: true}, {Type: "bind", Source: "/data", Target: "/d"}},
		CPUs:   1.5, Memory: 128 << 20, Restart: engine.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2},
		StopSignal: "SIGINT", StopTimeout: &stop}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("createOptions:\n got %+v\nwant %+v", o, want)
	}

	// --entrypoint "" is no entrypoint; an absent one is the image's.
	o, _ = createOptions("", "", request(t, `{"Image":"b","Entrypoint":[""]}`), nil)
	if o.Entrypoint == nil || len(*o.Entrypoint) != 0 {
		t.Errorf(`Entrypoint [""]: %v`, o.Entrypoint)
	}
	o, _ = createOptions("", "", request(t, `{"Image":"b","Entrypoint":null}`), nil)
	if o.Entrypoint != nil {
		t.Errorf("Entrypoint null: %v", *o.Entrypoint)
	}
	// -P publishes what the config and the image expose, on free ports.
	o, err = createOptions("", "", request(t, `{"Image":"b","ExposedPorts":{"8080/tcp":{}},"HostConfig":{"PublishAllPorts":true,
		"PortBindings":{"8080/tcp":[{"HostPort":"9000"}]}}}`), []string{"80/tcp", "8080/tcp"})
	if err != nil || !reflect.DeepEqual(o.Ports, []engine.PortMapping{{HostPort: 9000, ContainerPort: 8080, Proto: "tcp"},
		{ContainerPort: 80, Proto: "tcp"}}) {
		t.Errorf("-P: %+v, %v", o.Ports, err)
	}
	// Named and anonymous volumes, tmpfs; Config.Volumes a mount covers is that mount.
	o, err = createOptions("", "", request(t, `{"Image":"b","Volumes":{"/cache":{},"/db":{}},"HostConfig":{
		"Binds":["db-data:/db:ro"],"Tmpfs":{"/run/t":"size=1m,mode=700"},
		"Mounts":[{"Type":"volume","Source":"web","Target":"/web","VolumeOptions":{"NoCopy":true}},
			{"Type":"volume","Target":"/anon"},{"Type":"tmpfs","Target":"/t2","TmpfsOptions":{"SizeBytes":4096,"Mode":1023}}]}}`), nil)
	if err != nil || !reflect.DeepEqual(o.Mounts, []engine.Mount{
		{Type: "volume", Name: "db-data", Target: "/db", ReadOnly: true},
		{Type: "volume", Name: "web", Target: "/web", NoCopy: true},
		{Type: "volume", Target: "/anon"},
		{Type: "tmpfs", Target: "/t2", TmpfsSize: 4096, TmpfsMode: 0o1777},
		{Type: "tmpfs", Target: "/run/t", TmpfsSize: 1 << 20, TmpfsMode: 0o700},
		{Type: "volume", Target: "/cache"},
	}) {
		t.Errorf("volumes: %+v, %v", o.Mounts, err)
	}
	// CPU quota and period (--cpu-quota) become CPUs.
	o, _ = createOptions("", "", request(t, `{"Image":"b","HostConfig":{"CpuQuota":50000,"CpuPeriod":100000}}`), nil)
	if o.CPUs != 0.5 {
		t.Errorf("CpuQuota: CPUs %v", o.CPUs)
	}
	// --storage-opt size= sizes the writable disk.
	o, err = createOptions("", "", request(t, `{"Image":"b","HostConfig":{"StorageOpt":{"size":"20G"}}}`), nil)
	if err != nil || o.StorageSize != 20<<30 {
		t.Errorf("StorageOpt size: %d, %v", o.StorageSize, err)
	}
}

func TestCreateOptionsRefused(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{"Cmd":["x"]}`, "no image"},
		{`{"Image":"b","Volumes":{"data":{}}}`, "absolute container path"},
		{`{"Image":"b","HostConfig":{"NetworkMode":"host"}}`, `NetworkMode "host"`},
		{`{"Image":"b","HostConfig":{"Privileged":true}}`, "Privileged"},
		{`{"Image":"b","HostConfig":{"Tmpfs":{"/t":"noexec"}}}`, "Tmpfs"},
		{`{"Image":"b","HostConfig":{"CapAdd":["NET_ADMIN"]}}`, "CapAdd"},
		{`{"Image":"b","HostConfig":{"ExtraHosts":["a:1.2.3.4"]}}`, "ExtraHosts"},
		{`{"Image":"b","HostConfig":{"LogConfig":{"Type":"syslog"}}}`, "json-file"},
		{`{"Image":"b","HostConfig":{"PortBindings":{"80/sctp":[{"HostPort":"80"}]}}}`, "only tcp and udp"},
		{`{"Image":"b","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8000-8010"}]}}}`, "ranges"},
		{`{"Image":"b","HostConfig":{"Binds":["n@med:/data"]}}`, "volume name"},
		{`{"Image":"b","HostConfig":{"Binds":["/a:/b:z"]}}`, "unknown mode"},
		{`{"Image":"b","HostConfig":{"Mounts":[{"Type":"volume","Source":"vol","Target":"/v","VolumeOptions":{"Subpath":"x"}}]}}`, `subpath`},
		{`{"Image":"b","HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/v"}]}}`, `"npipe"`},
		{`{"Image":"b","HostConfig":{"Mounts":[{"Type":"tmpfs","Source":"x","Target":"/v"}]}}`, `no source`},
		{`{"Image":"b","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, "--restart and --rm"},
		{`{"Image":"b","HostConfig":{"NanoCpus":1000000000,"CpuQuota":50000}}`, "NanoCPUs and CPU Quota"},
		{`{"Image":"b","HostConfig":{"StorageOpt":{"size":"1k"}}}`, "StorageOpt size"},
		{`{"Image":"b","HostConfig":{"StorageOpt":{"inodes":"10"}}}`, `StorageOpt "inodes"`},
	} {
		_, err := createOptions("", "", request(t, tc.js), nil)
		if err == nil || !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a bad request naming %q", tc.js, err, tc.want)
		}
		if err != nil && strings.HasSuffix(messageOf(err), "bad request") {
			t.Errorf("%s: message %q keeps the class suffix", tc.js, messageOf(err))
		}
	}
	if _, err := createOptions("", "", &container.CreateRequest{}, nil); !errors.Is(err, errBadRequest) {
		t.Errorf("no config: %v", err)
	}
}
