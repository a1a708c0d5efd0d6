package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueStats is the queue's state at one moment.
type QueueStats struct {
	// Waiting messages have not been handed to any worker yet.
	Waiting int64
	// InFlight messages were handed to a worker and are not acknowledged yet.
	InFlight int64
	// Delayed messages wait for a retry's backoff before they become waiting again.
	Delayed int64
	// OldestWaiting and OldestInFlight are the ages of the oldest message in each state, 0 when
	// there is none.
	OldestWaiting  time.Duration
	OldestInFlight time.Duration
}

// QueueReadings are what the queue collector reads at each scrape. Either may be nil.
type QueueReadings struct {
	// Queue reads the message queue (Redis).
	Queue func(ctx context.Context) (QueueStats, error)
	// Backlog counts the batches of active jobs queued or running (Postgres).
	Backlog func(ctx context.Context) (int, error)
	// Timeout bounds each reading, so a slow or unreachable dependency cannot hold up a scrape.
	// Defaults to 2s.
	Timeout time.Duration
	// Logger receives failed readings. Defaults to slog.Default().
	Logger *slog.Logger
}

// queueCollector reads the queue and backlog when scraped: nothing runs between scrapes, and a
// scrape sees the state of that moment.
type queueCollector struct {
	r QueueReadings

	messages *prometheus.Desc
	oldest   *prometheus.Desc
	backlog  *prometheus.Desc
	success  *prometheus.Desc
}

// RegisterQueueCollector registers the scrape-time queue and backlog gauges on reg. Register
// it in the server processes only: every process that does reports the same queue.
func RegisterQueueCollector(reg prometheus.Registerer, r QueueReadings) error {
	if r.Timeout <= 0 {
		r.Timeout = 2 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return reg.Register(&queueCollector{
		r: r,
		messages: prometheus.NewDesc(Namespace+"_queue_messages",
			"Messages in the processing queue, by state: waiting (not handed to a worker yet), in_flight (handed out, not acknowledged), delayed (waiting for a retry's backoff).",
			[]string{"state"}, nil),
		oldest: prometheus.NewDesc(Namespace+"_queue_oldest_message_age_seconds",
			"Age of the oldest message in the processing queue, by state (waiting, in_flight), counted from when it (last) entered the queue; 0 when there is none.",
			[]string{"state"}, nil),
		backlog: prometheus.NewDesc(Namespace+"_processing_backlog_batches",
			"Batches of active processing jobs queued or running (from Postgres): the work the backpressure limit PIPELINE_MAX_BACKLOG_BATCHES counts.",
			nil, nil),
		success: prometheus.NewDesc(Namespace+"_scrape_collector_success",
			"Whether a scrape-time reading succeeded (1) or failed or timed out (0), by collector (queue, backlog).",
			[]string{"collector"}, nil),
	})
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.oldest
	ch <- c.backlog
	ch <- c.success
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.r.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	if c.r.Queue != nil {
		wg.Go(func() {
			st, err := c.r.Queue(ctx)
			c.report(ch, "queue", err)
			if err != nil {
				return
			}
			gauge := func(d *prometheus.Desc, v float64, state string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, state)
			}
			gauge(c.messages, float64(st.Waiting), "waiting")
			gauge(c.messages, float64(st.InFlight), "in_flight")
			gauge(c.messages, float64(st.Delayed), "delayed")
			gauge(c.oldest, st.OldestWaiting.Seconds(), "waiting")
			gauge(c.oldest, st.OldestInFlight.Seconds(), "in_flight")
		})
	}
	if c.r.Backlog != nil {
		wg.Go(func() {
			n, err := c.r.Backlog(ctx)
			c.report(ch, "backlog", err)
			if err == nil {
				ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(n))
			}
		})
	}
	wg.Wait()
}

func (c *queueCollector) report(ch chan<- prometheus.Metric, collector string, err error) {
	v := 1.0
	if err != nil {
		v = 0
		c.r.Logger.Warn("metrics: scrape-time reading failed", "collector", collector, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, v, collector)
}
