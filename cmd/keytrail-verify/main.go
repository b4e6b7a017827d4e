// Command keytrail-verify is the auditor's standalone, offline verifier of
// keytrail evidence. It builds with CGO_ENABLED=0, reads only local files and
// never touches the network.
//
//	keytrail-verify bundle --trust trust.json --policy policy.yaml [--log DIR] [--since FILE] BUNDLE
//
// Exit status: 0 verified, 1 verification failed, 2 usage error or unreadable input.
package main

import "github.com/keytrail/keytrail/cmd/internal/cli"

func main() { cli.Main(cli.NewVerifyRoot()) }
