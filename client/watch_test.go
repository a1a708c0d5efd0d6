package client_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/client"
	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// These tests play exact sequences of broken streams, which a real server cannot be made to
// produce on cue; TestWatchJobSurvivesServerRestart covers a real restart.

// flakyJobs is a JobServiceClient whose WatchJob streams play scripts: each call takes the next
// script, a list of snapshots followed by the error that ends the stream (nil: a clean end).
type flakyJobs struct {
	pipelinev1.JobServiceClient
	mu      sync.Mutex
	scripts []watchScript
	calls   int
}

type watchScript struct {
	dialErr error // returned by WatchJob itself
	jobs    []*pipelinev1.Job
	end     error
}

func (f *flakyJobs) WatchJob(ctx context.Context, _ *pipelinev1.WatchJobRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pipelinev1.WatchJobResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.scripts[f.calls]
	f.calls++
	if s.dialErr != nil {
		return nil, s.dialErr
	}
	return &scriptedStream{script: s}, nil
}

type scriptedStream struct {
	grpc.ClientStream
	script watchScript
	i      int
}

func (s *scriptedStream) Recv() (*pipelinev1.WatchJobResponse, error) {
	if s.i < len(s.script.jobs) {
		s.i++
		return &pipelinev1.WatchJobResponse{Job: s.script.jobs[s.i-1]}, nil
	}
	if s.script.end != nil {
		return nil, s.script.end
	}
	return nil, io.EOF
}

func snap(version int64, st pipelinev1.JobStatus) *pipelinev1.Job {
	return &pipelinev1.Job{JobId: "j", Version: version, Status: st}
}

const (
	pending    = pipelinev1.JobStatus_JOB_STATUS_PENDING
	inProgress = pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS
	completed  = pipelinev1.JobStatus_JOB_STATUS_COMPLETED
)

var fastWatch = client.WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

func TestWatchJobResumesWithoutRepeats(t *testing.T) {
	t.Parallel()
	shutdown := status.Error(codes.Unavailable, "server is shutting down")
	fake := &flakyJobs{scripts: []watchScript{
		{jobs: []*pipelinev1.Job{snap(1, pending), snap(2, inProgress)}, end: shutdown},
		{dialErr: status.Error(codes.Unavailable, "connection refused")},
		{jobs: []*pipelinev1.Job{snap(2, inProgress), snap(3, inProgress)}}, // ends cleanly but early
		{jobs: []*pipelinev1.Job{snap(3, inProgress), snap(5, completed)}, end: shutdown},
	}}
	var versions []int64
	reconnects := 0
	opts := fastWatch
	opts.OnUpdate = func(j *pipelinev1.Job) { versions = append(versions, j.GetVersion()) }
	opts.OnReconnect = func(error, time.Duration) { reconnects++ }
	last, err := client.WatchJob(t.Context(), fake, "j", opts)
	require.NoError(t, err, "the terminal state ends the watch, whatever the stream does next")
	require.Equal(t, completed, last.GetStatus())
	require.Equal(t, []int64{1, 2, 3, 5}, versions, "each state once, across reconnects")
	require.Equal(t, 4, fake.calls)
	require.Equal(t, 3, reconnects)
}

func TestWatchJobStopsOnOtherErrorsAndGivesUp(t *testing.T) {
	t.Parallel()
	fake := &flakyJobs{scripts: []watchScript{
		{jobs: []*pipelinev1.Job{snap(1, pending)}, end: status.Error(codes.NotFound, "job j was deleted with its source")},
	}}
	last, err := client.WatchJob(t.Context(), fake, "j", fastWatch)
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, int64(1), last.GetVersion(), "the last state seen comes with the error")
	require.Equal(t, 1, fake.calls)

	down := make([]watchScript, 1000)
	for i := range down {
		down[i] = watchScript{dialErr: status.Error(codes.Unavailable, "connection refused")}
	}
	opts := fastWatch
	opts.GiveUpAfter = 20 * time.Millisecond
	_, err = client.WatchJob(t.Context(), &flakyJobs{scripts: down}, "j", opts)
	require.ErrorContains(t, err, "gave up watching job j after 20ms")
	require.Equal(t, codes.Unavailable, status.Code(err), "the status stays in the chain")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = client.WatchJob(ctx, &flakyJobs{scripts: down}, "j", fastWatch)
	require.Equal(t, codes.Canceled, status.Code(err))
	require.False(t, errors.Is(err, io.EOF))
}
