package coordinator

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// leaderTTL is the election session's lease: a dead leader is replaced
// within about this long.
const leaderTTL = 5 * time.Second

// IsLeader reports whether this coordinator is the elected leader (the one
// that runs jobs). Safe for concurrent use.
func (s *Server) IsLeader() bool { return s.leading.Load() }

// campaign keeps this coordinator in the election until ctx ends: it waits to
// be elected, leads while its session lives, and campaigns again after
// losing it (an etcd outage, a long pause).
func (s *Server) campaign(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Server) leadOnce(ctx context.Context) error {
	sess, err := concurrency.NewSession(s.etcd, concurrency.WithTTL(int(leaderTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.keys.Leader())
	if err := el.Campaign(ctx, s.id); err != nil {
		return err
	}
	s.leading.Store(true)
	s.log.Info("elected leader")
	// The leader runs the load jobs; the guard makes every job checkpoint
	// conditional on still holding the election key.
	guard := clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())
	lctx, lcancel := context.WithCancel(ctx)
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		s.onLeader(lctx, guard)
	}()
	defer func() {
		lcancel()
		<-jobsDone
		s.leading.Store(false)
		if ctx.Err() == nil {
			s.log.Warn("lost leadership")
		}
	}()
	select {
	case <-ctx.Done():
		lcancel() // stop the jobs before handing over
		<-jobsDone
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = el.Resign(rctx) // hand over at once instead of after the lease
		cancel()
		return nil
	case <-sess.Done():
		return errors.New("election session expired")
	}
}

// onLeader is the leadership hook: it runs while this coordinator leads
// (until ctx ends) and starts the job runner, which resumes the jobs a
// previous leader left running.
func (s *Server) onLeader(ctx context.Context, guard clientv3.Cmp) {
	s.jobs.lead(ctx, guard)
}

// leaderID returns the elected coordinator's ID ("" when none).
func (s *Server) leaderID(ctx context.Context) string {
	resp, err := s.etcd.Get(ctx, s.keys.Leader()+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}
