// Command coredns is CoreDNS with only the plugins the real-network tests use:
// the kubernetes plugin answering for cluster.local, bound to loopback, with a
// readiness endpoint. Upstream's main links every plugin (cloud DNS providers,
// dnstap, QUIC, ...); leaving them out cuts the cold build by minutes and
// changes nothing the kubernetes plugin does.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// Plugins run in this order, as in upstream's plugin.cfg.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "errors", "log", "kubernetes"}
}

func main() {
	coremain.Run()
}
