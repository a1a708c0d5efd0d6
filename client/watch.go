package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// WatchOptions configure WatchJob.
type WatchOptions struct {
	// OnUpdate, when set, is called with every new state of the job, in the goroutine that called
	// WatchJob: versions strictly increase across reconnects, and the terminal state is passed
	// exactly once, last.
	OnUpdate func(job *pipelinev1.Job)
	// OnReconnect, when set, is called when the stream broke and is about to be opened again
	// after wait, with the error that broke it.
	OnReconnect func(err error, wait time.Duration)
	// MinBackoff is the first wait before reopening a broken stream; the wait doubles up to
	// MaxBackoff while attempts keep failing, and starts over once a message arrives.
	// 0 means 250 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// GiveUpAfter ends the watch with the last error when no stream could deliver a message
	// for this long. 0 means never: only ctx ends it.
	GiveUpAfter time.Duration
}

// Terminal reports whether the job is in a status that never changes again: COMPLETED, FAILED
// or CANCELLED.
func Terminal(job *pipelinev1.Job) bool {
	switch job.GetStatus() {
	case pipelinev1.JobStatus_JOB_STATUS_COMPLETED, pipelinev1.JobStatus_JOB_STATUS_FAILED, pipelinev1.JobStatus_JOB_STATUS_CANCELLED:
		return true
	}
	return false
}

// WatchJob follows the job until it is terminal and returns that final state. See the
// package-level WatchJob.
func (c *Client) WatchJob(ctx context.Context, jobID string, opts WatchOptions) (*pipelinev1.Job, error) {
	return WatchJob(ctx, c.jobs, jobID, opts)
}

// WatchJob follows a job with JobService.WatchJob until it is terminal and returns that final
// state. When the stream breaks before (Unavailable: a server restarting or shutting down, a
// network failure; or a stream that ends early), it opens a new one after a backoff. The server
// starts every stream with the job's current state, so nothing is lost: states the client has
// already seen (by version) are skipped, later ones are passed on, and the terminal state is
// passed once whichever stream brings it. Any other error (NotFound, PermissionDenied,
// InvalidArgument) ends the watch at once. On error the last state seen is returned with it
// (nil before the first).
func WatchJob(ctx context.Context, jobs pipelinev1.JobServiceClient, jobID string, opts WatchOptions) (*pipelinev1.Job, error) {
	minWait, maxWait := opts.MinBackoff, opts.MaxBackoff
	if minWait <= 0 {
		minWait = 250 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	maxWait = max(maxWait, minWait)
	var (
		last         *pipelinev1.Job
		failingSince time.Time
		wait         = minWait
	)
	for {
		err := watchOnce(ctx, jobs, jobID, func(j *pipelinev1.Job) bool {
			// The server answered, so the watch is not failing; but only progress resets the
			// backoff, so a stream that is accepted and then dropped again and again (a proxy's
			// idle timeout) is reopened at most every MaxBackoff, not every MinBackoff.
			failingSince = time.Time{}
			if last != nil && j.GetVersion() <= last.GetVersion() {
				return false // seen before this stream began
			}
			wait = minWait
			last = j
			if opts.OnUpdate != nil {
				opts.OnUpdate(j)
			}
			return Terminal(j)
		})
		if Terminal(last) {
			return last, nil
		}
		if ctx.Err() != nil {
			return last, status.FromContextError(ctx.Err()).Err()
		}
		if err == nil {
			// The stream ended cleanly without a terminal state: the server went away politely.
			err = status.Error(codes.Unavailable, "the watch stream ended before the job did")
		}
		if !reconnectable(err) {
			return last, err
		}
		now := time.Now()
		if failingSince.IsZero() {
			failingSince = now
		}
		if opts.GiveUpAfter > 0 && now.Sub(failingSince) >= opts.GiveUpAfter {
			return last, fmt.Errorf("gave up watching job %s after %s without an answer: %w", jobID, opts.GiveUpAfter, err)
		}
		if opts.OnReconnect != nil {
			opts.OnReconnect(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
		wait = min(wait*2, maxWait)
	}
}

// reconnectable says whether a broken watch is worth opening again: the server or the network
// was away (Unavailable), or the server asked to slow down (ResourceExhausted: rate limit).
func reconnectable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// watchOnce reads one WatchJob stream until it ends or onJob reports the terminal state; nil
// means it ended cleanly.
func watchOnce(ctx context.Context, jobs pipelinev1.JobServiceClient, jobID string, onJob func(*pipelinev1.Job) (done bool)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when we stop reading early
	stream, err := jobs.WatchJob(ctx, &pipelinev1.WatchJobRequest{JobId: jobID})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if onJob(resp.GetJob()) {
			return nil
		}
	}
}
