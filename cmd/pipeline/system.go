package main

// `pipeline workers` and `pipeline stats` ask SystemService what the system is doing: the live
// worker processes, and the figures an operator watches (queue, backlog, jobs, throughput).

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

func workersCmd() *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the live worker processes and what each works on",
		Long: `workers lists the worker processes alive now (pipeline worker, and the workers inside
pipeline dev or serve --workers=1), by host: id, version, uptime, time since the last heartbeat,
busy/total batch slots, documents processed (and failed) since start, and the jobs being worked
on. A worker that stopped cleanly is gone at once; one that died is gone when its record
expires, three heartbeats (PIPELINE_WORKER_HEARTBEAT) after its last.

--output json prints the ListWorkersResponse as JSON. Exit code 0 on success (also when no
worker is alive); errors exit with the codes every client command uses (pipeline help
exit-codes).`,
		Example: `  pipeline workers
  pipeline workers --host worker-3 --output json`,
		Args: cobra.NoArgs,
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().StringVar(&host, "host", "", "only workers on this host")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runSystem(cmd, settings, "list workers",
			func(ctx context.Context, sys pipelinev1.SystemServiceClient) (*pipelinev1.ListWorkersResponse, error) {
				return sys.ListWorkers(ctx, &pipelinev1.ListWorkersRequest{Host: host})
			},
			func(w io.Writer, resp *pipelinev1.ListWorkersResponse) error {
				return printWorkers(w, resp.GetWorkers(), time.Now())
			})
	}
	return cmd
}

// printWorkers writes one table row per worker.
func printWorkers(w io.Writer, workers []*pipelinev1.Worker, now time.Time) error {
	if len(workers) == 0 {
		_, err := fmt.Fprintln(w, "no live workers")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tVERSION\tUP\tHEARTBEAT\tSLOTS\tDOCUMENTS\tFAILED\tACTIVE JOBS")
	for _, wk := range workers {
		active := strings.Join(wk.GetActiveJobIds(), ",")
		if active == "" {
			active = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%d/%d\t%d\t%d\t%s\n",
			wk.GetWorkerId(), wk.GetHost(), wk.GetVersion(),
			roughDuration(now.Sub(wk.GetStartTime().AsTime())), roughDuration(now.Sub(wk.GetLastHeartbeatTime().AsTime())),
			wk.GetBusySlots(), wk.GetTotalSlots(), wk.GetDocumentsProcessed(), wk.GetDocumentsFailed(), active)
	}
	return tw.Flush()
}

func statsCmd() *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the system's figures: workers, queue, backlog, throughput, jobs by status",
		Long: `stats prints what an operator checks first: the live workers and their busy/total
slots; the processing queue (messages waiting, in flight and delayed, and the oldest message's
age); the backlog in Postgres (batches queued and running, documents queued, the oldest queued
batch's age); documents processed per second over --window (default the last minute), by
outcome; and jobs of each type by status.

--output json prints the GetStatsResponse as JSON. Exit code 0 on success; errors exit with
the codes every client command uses (pipeline help exit-codes).`,
		Example: `  pipeline stats
  pipeline stats --window 5m --output json`,
		Args: cobra.NoArgs,
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().DurationVar(&window, "window", time.Minute, "throughput window (1s to 1h)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if window < time.Second || window > time.Hour {
			return usageErrorf("--window: want 1s to 1h, got %s", window)
		}
		return runSystem(cmd, settings, "get stats",
			func(ctx context.Context, sys pipelinev1.SystemServiceClient) (*pipelinev1.GetStatsResponse, error) {
				return sys.GetStats(ctx, &pipelinev1.GetStatsRequest{RateWindow: durationpb.New(window)})
			},
			printStats)
	}
	return cmd
}

// printStats writes the figures as labelled lines, then the jobs as a table.
func printStats(w io.Writer, s *pipelinev1.GetStatsResponse) error {
	wk, q, tp := s.GetWorkers(), s.GetQueue(), s.GetThroughput()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workers\t%d live, %d/%d slots busy\n", wk.GetWorkers(), wk.GetBusySlots(), wk.GetTotalSlots())
	fmt.Fprintf(tw, "queue\t%d waiting, %d in flight, %d delayed; oldest waiting %s\n",
		q.GetMessagesWaiting(), q.GetMessagesInFlight(), q.GetMessagesDelayed(), roughDuration(q.GetOldestMessageAge().AsDuration()))
	fmt.Fprintf(tw, "backlog\t%d batches queued (%d documents; oldest %s), %d running\n",
		q.GetBatchesQueued(), q.GetDocumentsQueued(), roughDuration(q.GetOldestBatchAge().AsDuration()), q.GetBatchesRunning())
	fmt.Fprintf(tw, "throughput\t%.2f documents/s over the last %s: %d succeeded, %d skipped, %d failed\n",
		tp.GetDocumentsPerSecond(), roughDuration(tp.GetWindow().AsDuration()), tp.GetSucceeded(), tp.GetSkipped(), tp.GetFailed())
	fmt.Fprintf(tw, "server\t%s, at %s\n", s.GetServerVersion(), s.GetTime().AsTime().Local().Format(time.DateTime))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "JOBS\tPENDING\tIN PROGRESS\tCOMPLETED\tFAILED\tCANCELLED\t")
	for _, row := range []struct {
		name string
		c    *pipelinev1.JobCounts
	}{{"crawl", s.GetCrawlJobs()}, {"process", s.GetProcessJobs()}, {"all", s.GetJobs()}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", row.name,
			row.c.GetPending(), row.c.GetInProgress(), row.c.GetCompleted(), row.c.GetFailed(), row.c.GetCancelled())
	}
	return tw.Flush()
}

// runSystem makes one SystemService call and prints the answer: as one line of JSON with
// --output json, else with text.
func runSystem[T proto.Message](cmd *cobra.Command, settings *clientSettings, what string,
	call func(context.Context, pipelinev1.SystemServiceClient) (T, error), text func(io.Writer, T) error) error {
	c, err := dial(settings)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := c.unary(cmd.Context())
	defer cancel()
	resp, err := call(ctx, pipelinev1.NewSystemServiceClient(c.conn))
	if err != nil {
		return c.callError(what, err)
	}
	if settings.Output != "json" {
		return text(cmd.OutOrStdout(), resp)
	}
	b, err := protoJSON.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
	return err
}

// roughDuration shows a duration to the second under an hour and to the minute beyond: "0s",
// "42s", "3m10s", "2h5m".
func roughDuration(d time.Duration) string {
	d = max(d, 0)
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
