package dockerapi

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/engine"
)

// A create request's NetworkMode and EndpointsConfig become the engine's networks: the mode's
// network first, aliases and addresses from its endpoint, the default network for default/bridge,
// none for no network.
func TestCreateNetworks(t *testing.T) {
	for _, tc := range []struct {
		js   string
		want []engine.NetworkOptions
	}{
		{`{"Image":"b"}`, nil},
		{`{"Image":"b","HostConfig":{"NetworkMode":"default"}}`, nil},
		{`{"Image":"b","HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}`,
			[]engine.NetworkOptions{{Network: "bridge"}}},
		{`{"Image":"b","HostConfig":{"NetworkMode":"none"}}`, []engine.NetworkOptions{{Network: "none"}}},
		{`{"Image":"b","NetworkDisabled":true}`, []engine.NetworkOptions{{Network: "none"}}},
		{`{"Image":"b","HostConfig":{"NetworkMode":"app"},"NetworkingConfig":{"EndpointsConfig":{
			"zz":{"Aliases":["z"]},"app":{"Aliases":["web","w"],"IPAMConfig":{"IPv4Address":"172.18.0.9"}},"aa":{"Links":["c:c"]}}}}`,
			[]engine.NetworkOptions{{Network: "app", Aliases: []string{"web", "w"}, IPAddress: "172.18.0.9"},
				{Network: "aa"}, {Network: "zz", Aliases: []string{"z"}}}},
	} {
		o, err := createOptions("", "", request(t, tc.js), nil)
		if err != nil || !reflect.DeepEqual(o.Networks, tc.want) {
			t.Errorf("%s: %+v %v, want %+v", tc.js, o.Networks, err, tc.want)
		}
	}
	for _, tc := range []struct{ js, want string }{
		{`{"Image":"b","HostConfig":{"NetworkMode":"container:x"}}`, "container:x"},
		{`{"Image":"b","HostConfig":{"NetworkMode":"app"},"NetworkingConfig":{"EndpointsConfig":{"app":{"DriverOpts":{"a":"b"}}}}}`, "DriverOpts"},
		{`{"Image":"b","HostConfig":{"NetworkMode":"app"},"NetworkingConfig":{"EndpointsConfig":{"app":{"IPAMConfig":{"IPv6Address":"fd00::2"}}}}}`, "IPv4 only"},
	} {
		_, err := createOptions("", "", request(t, tc.js), nil)
		if err == nil || !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a bad request naming %q", tc.js, err, tc.want)
		}
	}
}
