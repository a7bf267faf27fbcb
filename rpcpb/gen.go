// Package rpcpb holds Strata's protobuf messages and gRPC services (generated
// from strata.proto, committed), the conversions between them and the Go types,
// and the one mapping between Strata's sentinel errors and gRPC/HTTP statuses.
package rpcpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative strata.proto
