package harness

import "runtime"

const goarch = runtime.GOARCH
