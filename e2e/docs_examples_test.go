package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// example is one curl or grpcurl command of a Markdown page.
type example struct {
	where string // file:line
	cmd   string // the command, continuation lines joined
	want  string // the gRPC code a trailing "# → NNN CODE" comment promises; "" means success
}

var (
	expectRE      = regexp.MustCompile(`#\s*→\s*\d{3}\s+([A-Z_]+)`)
	grpcurlCodeRE = regexp.MustCompile(`Code: (\w+)`)
)

// shellExamples returns the curl and grpcurl commands of the ```sh blocks of a Markdown file.
func shellExamples(t *testing.T, path string) []example {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []example
	inBlock, cont := false, ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock && strings.TrimPrefix(line, "```") == "sh"
			continue
		case !inBlock:
			continue
		}
		if cont != "" {
			line = cont + " " + strings.TrimSpace(line)
			cont = ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		if !strings.HasPrefix(line, "curl ") && !strings.HasPrefix(line, "grpcurl ") {
			continue
		}
		ex := example{where: filepath.Base(path) + ":" + strconv.Itoa(n), cmd: line}
		if m := expectRE.FindStringSubmatch(line); m != nil {
			ex.want = m[1]
		}
		out = append(out, ex)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestDocsExamples runs every curl and grpcurl line of docs/api.md and the README against a live
// server, with the placeholders (<source_id>, <job_id>, ...) filled in with real ids and the
// default addresses replaced by the test server's. A line must succeed (exit 0, no error body),
// or fail with exactly the code its "# → 400 CODE" comment names. It also checks that docs/api.md
// has a section for every public RPC.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	grpcurl, err := filepath.Abs("../.bin/grpcurl")
	require.NoError(t, err)
	_, gerr := os.Stat(grpcurl)
	_, cerr := exec.LookPath("curl")
	if gerr != nil || cerr != nil {
		if os.Getenv("PIPELINE_REQUIRE_TOOLS") == "1" {
			t.Fatalf("grpcurl (make tools) or curl missing: %v, %v", gerr, cerr)
		}
		t.Skip("grpcurl (make tools) or curl missing; make test sets PIPELINE_REQUIRE_TOOLS=1 and fails instead")
	}

	requireEveryRPCDocumented(t, "../docs/api.md")

	b := start(t, options{workers: 1})
	ctx := tctx(t)

	// The state the examples refer to.
	src := b.newSource(t)
	done := b.ingest(t, src, &pipelinev1.DocumentInput{Uri: "install.md",
		Content: "# Install\n\nHow to install it on Linux and macOS.\n"})
	b.watchUntilDone(t, done.GetJob().GetJobId())
	failed := b.ingest(t, src, &pipelinev1.DocumentInput{Uri: "broken.md", Content: "# Broken\n\nPERMANENT-FAIL here.\n"})
	b.watchUntilDone(t, failed.GetJob().GetJobId())
	toDelete := b.newSource(t)

	web := newSite(t)
	web.set("/", page(1, ""))
	other := newSite(t) // the page's example URL; CreateSource on it starts a crawl of its own
	other.set("/", page(2, ""))
	webSrc, err := b.content.CreateSource(ctx, &pipelinev1.CreateSourceRequest{Url: web.srv.URL + "/"})
	require.NoError(t, err)
	b.crawlToEnd(t, webSrc.GetJob().GetJobId())

	block := make(chan struct{})
	b.embedder.mu.Lock()
	b.embedder.block = block
	b.embedder.mu.Unlock()
	t.Cleanup(func() { close(block) })
	running := b.ingest(t, b.newSource(t), &pipelinev1.DocumentInput{Uri: "slow.md", Content: "# Slow\n\nBLOCK until cancelled.\n"})

	fill := strings.NewReplacer(
		"127.0.0.1:8080", b.httpAddr,
		"127.0.0.1:9090", b.grpcAddr,
		"https://docs.example.com/", other.srv.URL+"/",
		"<source_id_to_delete>", toDelete,
		"<web_source_id>", webSrc.GetSource().GetSourceId(),
		"<source_id>", src,
		"<document_id>", done.GetDocuments()[0].GetDocumentId(),
		"<failed_job_id>", failed.GetJob().GetJobId(),
		"<running_job_id>", running.GetJob().GetJobId(),
		"<job_id>", done.GetJob().GetJobId(),
		"<key>", "an-unused-key-0123456789",
	)

	var all []example
	for _, f := range []string{"../docs/api.md", "../README.md"} {
		all = append(all, shellExamples(t, f)...)
	}
	require.Greater(t, len(all), 20, "found too few examples; did the pages' format change?")
	// The examples share one deadline of their own: tctx's 30 s is for single calls, and a loaded
	// machine runs some 30 processes more slowly than that.
	runCtx, cancelRun := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancelRun()
	env := append(os.Environ(), "PATH="+filepath.Dir(grpcurl)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, ex := range all {
		cmd := fill.Replace(ex.cmd)
		if i := strings.Index(cmd, " # "); i >= 0 {
			cmd = cmd[:i]
		}
		require.NotRegexp(t, `<[a-z_]+>`, cmd, "%s: a placeholder the test does not know", ex.where)
		cctx, cancel := context.WithTimeout(runCtx, time.Minute)
		c := exec.CommandContext(cctx, "sh", "-c", cmd)
		c.Env = env
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		runErr := c.Run()
		cancel()
		got := outcome(stdout.Bytes(), stderr.Bytes(), runErr)
		want := ex.want
		if want == "" {
			want = "OK"
		}
		require.Equal(t, want, got, "%s: %s\nstdout: %s\nstderr: %s", ex.where, cmd, stdout.String(), stderr.String())
	}

	// The cancel example really cancelled the running job.
	j, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: running.GetJob().GetJobId()})
	require.NoError(t, err)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, j.GetJob().GetStatus())
}

// outcome names what a command's run came to: "OK", or the gRPC code of the error it printed.
// curl exits 0 on an HTTP error, so its body tells: the gateway's errors are {"code", "message"}.
// grpcurl prints "Code: NotFound" to stderr and exits non-zero.
func outcome(stdout, stderr []byte, runErr error) string {
	if m := grpcurlCodeRE.FindSubmatch(stderr); m != nil {
		return toUpperSnake(string(m[1]))
	}
	if runErr != nil {
		return "exit: " + runErr.Error()
	}
	for _, line := range bytes.Split(bytes.TrimSpace(stdout), []byte("\n")) {
		var e struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(line, &e) == nil && e.Code != nil && e.Message != "" {
			return toUpperSnake(codes.Code(*e.Code).String())
		}
	}
	return "OK"
}

// toUpperSnake turns "NotFound" into "NOT_FOUND".
func toUpperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// requireEveryRPCDocumented checks that every RPC of the public services has a "### " heading
// naming it in the page.
func requireEveryRPCDocumented(t *testing.T, path string) {
	t.Helper()
	page, err := os.ReadFile(path)
	require.NoError(t, err)
	var headings []string
	for _, line := range strings.Split(string(page), "\n") {
		if strings.HasPrefix(line, "### ") {
			headings = append(headings, line)
		}
	}
	heading := strings.Join(headings, "\n")
	protoregistry.GlobalFiles.RangeFilesByPackage("pipeline.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			if svc.Name() == "WorkerService" {
				continue // for workers only, documented by a paragraph
			}
			for j := range svc.Methods().Len() {
				name := string(svc.Methods().Get(j).Name())
				require.Regexp(t, `\b`+name+`\b`, heading, "%s has no section for %s.%s", path, svc.Name(), name)
			}
		}
		return true
	})
}
