package coordinator

import (
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
)

// policy says who may call what: any certificate of the cluster may read the
// mount table, reports, jobs and pins; only an admin certificate may change
// mounts, run or stop loads, free or pin data.
func policy() rpcpb.Policy {
	adminOnly := []pki.Role{pki.RoleAdmin}
	return rpcpb.Policy{
		Default: rpcpb.AnyRole,
		Methods: map[string][]pki.Role{
			rpcpb.Coordinator_AddMount_FullMethodName:    adminOnly,
			rpcpb.Coordinator_RemoveMount_FullMethodName: adminOnly,
			rpcpb.Coordinator_UpdateMount_FullMethodName: adminOnly,
			rpcpb.Coordinator_SubmitLoad_FullMethodName:  adminOnly,
			rpcpb.Coordinator_StopLoad_FullMethodName:    adminOnly,
			rpcpb.Coordinator_Free_FullMethodName:        adminOnly,
			rpcpb.Coordinator_Pin_FullMethodName:         adminOnly,
			rpcpb.Coordinator_Unpin_FullMethodName:       adminOnly,
		},
	}
}
