package s3api

import (
	"context"
	"net/http"
)

func (s *Server) headBucket(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	rq.w.Header().Set("X-Amz-Bucket-Region", s.cfg.Region)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getBucketLocation(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	region := s.cfg.Region
	if region == "us-east-1" {
		region = "" // S3 reports the classic region as an empty constraint
	}
	return s.writeXML(rq, locationConstraint{NS: s3NS, Region: region})
}

// getBucketVersioning reports versioning as never enabled.
func (s *Server) getBucketVersioning(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	return s.writeXML(rq, versioningConfiguration{NS: s3NS})
}

// getACL reports the one ACL Strata has: the owner may do everything.
func (s *Server) getACL(ctx context.Context, rq *request) error {
	if rq.t.Key == "" {
		if _, err := s.bucketPath(ctx, rq); err != nil {
			return err
		}
		return s.writeXML(rq, fullControlPolicy())
	}
	p, dir, err := s.objectPath(ctx, rq, false)
	if err != nil {
		return err
	}
	fi, err := s.c.Stat(ctx, p, false)
	if err != nil {
		return err
	}
	if fi.IsDir != dir {
		return apiErr("NoSuchKey", "")
	}
	return s.writeXML(rq, fullControlPolicy())
}

// createBucket: buckets are mounts, made with `strata fs mount`. Creating
// one that exists answers as S3 does for the owner.
func (s *Server) createBucket(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err == nil {
		return apiErr("BucketAlreadyOwnedByYou", "")
	}
	return apiErr("NotImplemented", "buckets are the top-level directories of Strata's namespace: mount an under-storage there with `strata fs mount /%s <uri>`", rq.t.Bucket)
}

func (s *Server) deleteBucket(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	return apiErr("NotImplemented", "buckets are mounts: remove one with `strata fs unmount /%s`", rq.t.Bucket)
}
