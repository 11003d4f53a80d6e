// Command etcd is the etcd server, built from the published etcd server module at the version
// pinned in go.mod. It exists only so the local control plane can be built without a container
// engine or a prebuilt download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
