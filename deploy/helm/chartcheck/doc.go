// Package chartcheck checks the Helm chart in ../strata and the compose file
// in ../../compose.yaml without a Kubernetes cluster: it renders the chart
// with Helm's Go SDK for each values profile in ../strata/ci, lints it as
// `helm lint --strict` does, decodes every manifest strictly into k8s.io/api
// types, and asserts what a broken deployment would get wrong (privileged
// FUSE access and mount propagation of the CSI node plugin, hostPath cache
// tiers, probes, pinned images, TLS secrets).
//
// It is a module of its own so that Strata's main module keeps no Kubernetes
// dependencies. Run it from this directory: go test ./...
package chartcheck
