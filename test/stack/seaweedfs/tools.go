//go:build tools

// Package tools pins the SeaweedFS version the test stack builds `weed` from
// (test/stack/seaweedfs.sh install: go build github.com/seaweedfs/seaweedfs/weed).
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
