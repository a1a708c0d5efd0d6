package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// nodePeer is a long-lived node process running js/split.mjs over a corpus written to disk:
// start-up and file reading happen once, outside every measurement.
type nodePeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr strings.Builder
	Docs   int
	Bytes  int
}

type nodeReply struct {
	Ready  bool    `json:"ready"`
	Error  string  `json:"error"`
	MS     float64 `json:"ms"`
	CPUMS  float64 `json:"cpuMs"`
	Docs   int     `json:"docs"`
	Bytes  int     `json:"bytes"`
	Chunks int     `json:"chunks"`
	Chars  int     `json:"chars"`
}

// ensureNodeModules installs the pinned JavaScript peers (npm ci from package-lock.json) when
// they are missing or older than the lock file.
func ensureNodeModules(jsDir string, logf func(string, ...any)) error {
	lock, err := os.Stat(filepath.Join(jsDir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("the JavaScript peers' lock file: %w (run from bench/ or pass -js)", err)
	}
	if st, err := os.Stat(filepath.Join(jsDir, "node_modules", ".package-lock.json")); err == nil && !st.ModTime().Before(lock.ModTime()) {
		return nil
	}
	logf("installing the JavaScript peers: npm ci in %s", jsDir)
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = jsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", jsDir, err, out)
	}
	return nil
}

func startNode(ctx context.Context, jsDir, corpusDir string, chunkSize, overlap int) (*nodePeer, error) {
	script, err := filepath.Abs(filepath.Join(jsDir, "split.mjs"))
	if err != nil {
		return nil, err
	}
	p := &nodePeer{}
	p.cmd = exec.CommandContext(ctx, "node", script, corpusDir, strconv.Itoa(chunkSize), strconv.Itoa(overlap))
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("node (is it installed?): %w", err)
	}
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 64<<10), 16<<20)
	r, err := p.read()
	if err != nil {
		p.Close()
		return nil, err
	}
	if !r.Ready {
		p.Close()
		return nil, fmt.Errorf("node: unexpected first line %+v", r)
	}
	p.Docs, p.Bytes = r.Docs, r.Bytes
	return p, nil
}

func (p *nodePeer) read() (nodeReply, error) {
	var r nodeReply
	if !p.out.Scan() {
		err := p.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return r, fmt.Errorf("node: %w; stderr: %s", err, p.stderr.String())
	}
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("node: %w: %q", err, p.out.Text())
	}
	if r.Error != "" {
		return r, errors.New("node: " + r.Error)
	}
	return r, nil
}

// split runs one splitter over the whole corpus; with chunksFile, node writes the chunks there
// (a JSON array of each document's chunks) after the timing.
func (p *nodePeer) split(splitter, chunksFile string) (nodeReply, error) {
	req, _ := json.Marshal(map[string]string{"splitter": splitter, "chunksFile": chunksFile})
	if _, err := p.stdin.Write(append(req, '\n')); err != nil {
		return nodeReply{}, fmt.Errorf("node: %w; stderr: %s", err, p.stderr.String())
	}
	return p.read()
}

func (p *nodePeer) Close() {
	p.stdin.Close()
	_ = p.cmd.Wait()
}
