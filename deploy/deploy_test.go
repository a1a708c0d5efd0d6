// Package deploy_test checks deploy/ against the code it deploys, since no Docker engine runs
// where the tests do: compose.yaml's PIPELINE_* settings are real settings that the binary
// accepts, the services are wired to each other (addresses, ports, keys, health conditions),
// secrets are not written into the file, images are pinned, and the Dockerfile builds what the
// Makefile builds from files that .dockerignore keeps.
package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pipeline-dev/pipeline/internal/config"
)

// The services compose.yaml must have, by role.
const (
	svcPostgres = "postgres"
	svcRedis    = "redis"
	svcEtcd     = "etcd"
	svcMinio    = "minio"
	svcMilvus   = "milvus"
	svcMigrate  = "migrate"
	svcServer   = "server"
	svcWorker   = "worker"
)

type composeFile struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Restart string `yaml:"restart"`
}

// fixture is compose.yaml interpolated with .env.example (and valid keys where the example
// leaves a required key empty), as `docker compose config` would see it, plus the raw text.
type fixture struct {
	raw     string
	env     map[string]string // the interpolation environment
	compose composeFile
}

func load(t *testing.T) fixture {
	t.Helper()
	raw, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	env := readEnvFile(t, ".env.example")
	// The keys a user must make: stand-ins that the server accepts.
	for name, v := range map[string]string{
		"PIPELINE_CLIENT_KEY": "test-client-key-0123456789",
		"PIPELINE_WORKER_KEY": "test-worker-key-0123456789",
	} {
		require.Contains(t, env, name, ".env.example must list %s", name)
		require.Empty(t, env[name], ".env.example must not give a key a value: every deployment makes its own")
		env[name] = v
	}
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(raw, &root), "compose.yaml is not YAML")
	interpolateNode(t, &root, env, map[*yaml.Node]bool{})
	var c composeFile
	require.NoError(t, root.Decode(&c), "compose.yaml does not have the expected shape")
	return fixture{raw: string(raw), env: env, compose: c}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	env := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s:%d: want NAME=VALUE", path, i+1)
		require.NotContains(t, env, k, "%s:%d: %s given twice", path, i+1, k)
		env[k] = v
	}
	return env
}

// varRef is one compose interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}.
var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)

// interpolate does what compose does with one value, failing the test where compose would fail.
func interpolate(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := varRef.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		v, set := env[name]
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		switch strings.TrimPrefix(op, ":") {
		case "":
			return v
		case "-":
			if empty {
				return arg
			}
			return v
		case "?":
			if empty {
				t.Fatalf("compose would refuse to start: %s: %s", name, arg)
			}
			return v
		default: // "+"
			if empty {
				return ""
			}
			return arg
		}
	})
	require.NotContains(t, strings.ReplaceAll(s, "$$", ""), "${${", "nested interpolation is not supported here")
	return out
}

func interpolateNode(t *testing.T, n *yaml.Node, env map[string]string, seen map[*yaml.Node]bool) {
	if seen[n] {
		return // an anchor reached again through an alias is done
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode {
		n.Value = interpolate(t, n.Value, env)
	}
	if n.Alias != nil {
		interpolateNode(t, n.Alias, env, seen)
	}
	for _, c := range n.Content {
		interpolateNode(t, c, env, seen)
	}
}

// settingNames are the environment variables of the config package, learnt by asking it to
// load an environment and recording what it looks up.
func settingNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	c := config.Default()
	require.NoError(t, c.LoadEnv(func(name string) (string, bool) { names[name] = true; return "", false }))
	require.NotEmpty(t, names)
	return names
}

// configOf is the configuration a service's process runs with: the binary's defaults, the
// image's ENV, then the service's environment; it must pass the binary's own validation.
func configOf(t *testing.T, f fixture, name string) config.Config {
	t.Helper()
	svc := f.compose.Services[name]
	env := dockerfileEnv(t)
	for k, v := range svc.Environment {
		env[k] = v
	}
	c := config.Default()
	require.NoError(t, c.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }), "service %s", name)
	require.NoError(t, c.Validate(), "service %s: the binary would refuse this configuration", name)
	return c
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	return h, p
}

func TestComposeHasTheServices(t *testing.T) {
	t.Parallel()
	f := load(t)
	for _, name := range []string{svcPostgres, svcRedis, svcEtcd, svcMinio, svcMilvus, svcMigrate, svcServer, svcWorker} {
		require.Contains(t, f.compose.Services, name)
	}
	require.Equal(t, 2, f.compose.Services[svcWorker].Deploy.Replicas, "two workers")
	require.Equal(t, []string{"migrate", "up"}, f.compose.Services[svcMigrate].Command)
	require.Equal(t, []string{"serve"}, f.compose.Services[svcServer].Command)
	require.Equal(t, []string{"worker"}, f.compose.Services[svcWorker].Command)
	for _, name := range []string{svcMigrate, svcServer, svcWorker} {
		svc := f.compose.Services[name]
		require.NotNil(t, svc.Build, "%s builds the image from deploy/Dockerfile", name)
		require.Equal(t, "..", svc.Build.Context, "%s: the build context is the repository root", name)
		require.Equal(t, "deploy/Dockerfile", svc.Build.Dockerfile, name)
		require.Equal(t, f.compose.Services[svcServer].Image, svc.Image, "%s runs the same image as the server", name)
	}
	// Every named volume is declared, and every declared one used.
	used := map[string]bool{}
	for name, svc := range f.compose.Services {
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				require.Contains(t, f.compose.Volumes, src, "service %s uses volume %s, which is not declared", name, src)
				used[src] = true
			}
		}
	}
	for v := range f.compose.Volumes {
		require.True(t, used[v], "volume %s is declared but not used", v)
	}
}

func TestComposeSettingsAreSettings(t *testing.T) {
	t.Parallel()
	f := load(t)
	names := settingNames(t)
	for svcName, svc := range f.compose.Services {
		for k := range svc.Environment {
			if strings.HasPrefix(k, "PIPELINE_") {
				require.True(t, names[k], "service %s sets %s, which is not a setting of internal/config", svcName, k)
			}
		}
	}
	for k := range dockerfileEnv(t) {
		require.True(t, names[k], "deploy/Dockerfile sets %s, which is not a setting of internal/config", k)
	}
}

// A default written in compose.yaml (${PIPELINE_X:-d}) must be the binary's own default, and
// .env.example must say the same, or "leave it unset" would mean two different things.
func TestComposeDefaultsAreTheBinarys(t *testing.T) {
	t.Parallel()
	f := load(t)
	example := readEnvFile(t, ".env.example")
	names := settingNames(t)
	refs := regexp.MustCompile(`\$\{(PIPELINE_[A-Z0-9_]+):-([^}]*)\}`).FindAllStringSubmatch(f.raw, -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		name, def := m[1], m[2]
		if !names[name] {
			continue // a compose knob such as PIPELINE_BIND_ADDR, not a setting
		}
		c := config.Default()
		require.NoError(t, c.LoadEnv(func(k string) (string, bool) { return def, k == name }), name)
		require.Equal(t, config.Default(), c, "compose.yaml defaults %s to %q, which is not the binary's default", name, def)
		require.Equal(t, def, example[name], ".env.example gives %s another value than compose.yaml's default", name)
	}
}

// Every variable compose.yaml reads is explained in .env.example, and .env.example lists
// nothing compose.yaml ignores.
func TestEnvExampleMatchesCompose(t *testing.T) {
	t.Parallel()
	f := load(t)
	example := readEnvFile(t, ".env.example")
	used := map[string]bool{}
	for _, m := range varRef.FindAllStringSubmatch(f.raw, -1) {
		if m[1] != "" {
			used[m[1]] = true
			require.Contains(t, example, m[1], "compose.yaml reads %s: add it, with a comment, to deploy/.env.example", m[1])
		}
	}
	for k := range example {
		require.True(t, used[k], "deploy/.env.example lists %s, which compose.yaml does not read", k)
	}
}

func TestComposeWiring(t *testing.T) {
	t.Parallel()
	f := load(t)
	services := f.compose.Services
	pg := services[svcPostgres].Environment
	milvusPorts := services[svcMilvus].Expose

	for _, name := range []string{svcMigrate, svcServer, svcWorker} {
		c := configOf(t, f, name)
		require.Equal(t, "milvus", c.VectorStore, "%s: several processes share the vector store, so it must be Milvus", name)
		host, port := hostPort(t, c.MilvusAddr)
		require.Equal(t, svcMilvus, host, "%s: PIPELINE_MILVUS_ADDR names the Milvus service", name)
		require.Contains(t, milvusPorts, port, "%s: PIPELINE_MILVUS_ADDR's port is one the Milvus service exposes", name)

		db, err := url.Parse(c.DatabaseURL)
		require.NoError(t, err)
		require.Equal(t, svcPostgres+":5432", db.Host, "%s: PIPELINE_DATABASE_URL names the Postgres service", name)
		require.Equal(t, pg["POSTGRES_USER"], db.User.Username(), "%s: database user", name)
		pw, _ := db.User.Password()
		require.Equal(t, pg["POSTGRES_PASSWORD"], pw, "%s: database password", name)
		require.Equal(t, "/"+pg["POSTGRES_DB"], db.Path, "%s: database name", name)

		rd, err := url.Parse(c.RedisURL)
		require.NoError(t, err)
		require.Equal(t, svcRedis+":6379", rd.Host, "%s: PIPELINE_REDIS_URL names the Redis service", name)
	}

	server := configOf(t, f, svcServer)
	require.False(t, server.Migrate, "servers leave migrations to the migrate service, so replicas never race")
	_, grpcPort := hostPort(t, server.GRPCAddr)
	_, httpPort := hostPort(t, server.HTTPAddr)
	var published []string
	for _, p := range services[svcServer].Ports {
		parts := strings.Split(p, ":")
		published = append(published, parts[len(parts)-1])
	}
	require.ElementsMatch(t, []string{grpcPort, httpPort}, published, "the server publishes its gRPC and HTTP ports")
	require.ElementsMatch(t, []string{grpcPort, httpPort}, dockerfileExpose(t), "the image exposes the ports the server listens on")
	require.Equal(t, []string{"CMD", "/usr/local/bin/healthcheck", "http://127.0.0.1:" + httpPort + "/readyz"},
		services[svcServer].Healthcheck.Test, "the server's health check asks /readyz on its HTTP port, with the image's probe")

	worker := configOf(t, f, svcWorker)
	require.Equal(t, svcServer+":"+grpcPort, worker.Server, "workers report to the server's gRPC port")
	_, metricsPort := hostPort(t, worker.MetricsAddr)
	require.Contains(t, services[svcWorker].Expose, metricsPort, "workers expose their metrics port")
	require.Equal(t, []string{"CMD", "/usr/local/bin/healthcheck", "http://127.0.0.1:" + metricsPort + "/metrics"},
		services[svcWorker].Healthcheck.Test, "a worker's health check asks its metrics port, its only listener")
	require.NotEmpty(t, worker.WorkerAPIKey)
	keys, err := server.ParseAPIKeys()
	require.NoError(t, err)
	digest := sha256.Sum256([]byte(worker.WorkerAPIKey))
	i := slices.IndexFunc(keys, func(k config.APIKey) bool { return k.Digest == digest })
	require.GreaterOrEqual(t, i, 0, "the server accepts the workers' key")
	require.Equal(t, []string{config.ScopeWorker}, keys[i].Scopes, "the workers' key has the worker scope and no other")
	require.Len(t, keys, 2, "one key for clients, one for workers")
	for _, k := range keys {
		if k.Digest != digest {
			require.Equal(t, []string{config.ScopeRead, config.ScopeWrite}, k.Scopes, "the client key reads and writes")
		}
	}
}

func TestComposeStartOrder(t *testing.T) {
	t.Parallel()
	services := load(t).compose.Services
	for name, svc := range services {
		for dep, cond := range svc.DependsOn {
			require.Contains(t, services, dep, "%s depends on an unknown service", name)
			switch cond.Condition {
			case "service_healthy":
				require.NotNil(t, services[dep].Healthcheck, "%s waits for %s to be healthy, which has no health check", name, dep)
			case "service_completed_successfully":
				require.Equal(t, "no", services[dep].Restart, "%s waits for one-shot %s, which must not restart", name, dep)
			default:
				t.Errorf("%s depends on %s with condition %q: want service_healthy or service_completed_successfully", name, dep, cond.Condition)
			}
		}
	}
	want := map[string]map[string]string{
		svcMilvus:  {svcEtcd: "service_healthy", svcMinio: "service_healthy"},
		svcMigrate: {svcPostgres: "service_healthy"},
		svcServer:  {svcMigrate: "service_completed_successfully", svcRedis: "service_healthy", svcMilvus: "service_healthy"},
		svcWorker: {svcMigrate: "service_completed_successfully", svcRedis: "service_healthy", svcMilvus: "service_healthy",
			svcServer: "service_healthy"},
	}
	for name, deps := range want {
		for dep, cond := range deps {
			require.Equal(t, cond, services[name].DependsOn[dep].Condition, "%s must wait for %s", name, dep)
		}
	}
	for _, name := range []string{svcPostgres, svcRedis, svcEtcd, svcMinio, svcMilvus, svcServer, svcWorker} {
		require.NotNil(t, services[name].Healthcheck, "%s has a health check", name)
		require.NotEmpty(t, services[name].Healthcheck.Test, "%s: the health check has a test", name)
		require.Equal(t, "unless-stopped", services[name].Restart, "%s restarts", name)
	}
	require.Equal(t, "unless-stopped", services[svcWorker].Restart)
}

// secretName says a variable holds a secret.
var secretName = regexp.MustCompile(`PASSWORD|SECRET|_TOKEN\b|_KEY\b|_KEYS\b`)

func TestComposeHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	f := load(t)
	var root map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(f.raw), &root))
	services := root["services"].(map[string]any)
	// Raw (not interpolated) values: a secret comes from the environment, never from the file.
	for name, s := range services {
		env, _ := s.(map[string]any)["environment"].(map[string]any)
		for k, v := range env {
			if secretName.MatchString(k) || k == "PIPELINE_DATABASE_URL" {
				raw := fmt.Sprint(v)
				if k == "PIPELINE_DATABASE_URL" {
					u, err := url.Parse(varRef.ReplaceAllString(raw, "x"))
					require.NoError(t, err)
					pw, _ := u.User.Password()
					require.Equal(t, "x", pw, "%s: the database password comes from ${POSTGRES_PASSWORD}", name)
					continue
				}
				require.Regexp(t, `^(\$\{[A-Z0-9_]+[^}]*\}[^$]*)+$`, raw, "service %s: %s must come from a variable (deploy/.env), not be written in compose.yaml", name, k)
			}
		}
	}
	// A default of a secret variable is allowed only where marked as a local default.
	for i, line := range strings.Split(f.raw, "\n") {
		for _, m := range varRef.FindAllStringSubmatch(line, -1) {
			if m[1] != "" && secretName.MatchString(m[1]) && strings.TrimPrefix(m[2], ":") == "-" && m[3] != "" {
				require.Contains(t, line, "# LOCAL DEFAULT", "compose.yaml:%d: a default for %s must be marked # LOCAL DEFAULT", i+1, m[1])
			}
		}
	}
	// API keys guard the published ports: they have no default at all.
	for _, k := range []string{"PIPELINE_API_KEYS", "PIPELINE_WORKER_API_KEY"} {
		for name, s := range services {
			env, _ := s.(map[string]any)["environment"].(map[string]any)
			raw, ok := env[k]
			if !ok {
				continue
			}
			refs := varRef.FindAllStringSubmatch(fmt.Sprint(raw), -1)
			require.NotEmpty(t, refs, "%s: %s", name, k)
			for _, m := range refs {
				require.Equal(t, ":?", m[2], "%s: %s must use ${%s:?...}: a deployment makes its own keys", name, k, m[1])
			}
		}
	}
}

// imageRef checks a pinned image reference without a registry host: NAME:TAG, the tag not
// "latest", the first path part not a host (no '.' or ':', not localhost).
func checkImage(t *testing.T, where, ref string) {
	t.Helper()
	name, tag, ok := strings.Cut(ref, ":")
	require.True(t, ok && tag != "", "%s: image %q is not pinned by tag", where, ref)
	require.NotEqual(t, "latest", tag, "%s: image %q: pin a version, not latest", where, ref)
	first, _, _ := strings.Cut(name, "/")
	require.False(t, strings.Contains(first, ".") || first == "localhost", "%s: image %q: use the default registry's name", where, ref)
}

func TestImagesArePinned(t *testing.T) {
	t.Parallel()
	for name, svc := range load(t).compose.Services {
		checkImage(t, "compose.yaml service "+name, svc.Image)
	}
	for _, from := range dockerfileFroms(t) {
		if from != "scratch" {
			checkImage(t, "deploy/Dockerfile", from)
		}
	}
}

// dockerfile is deploy/Dockerfile's instructions, continuation lines joined, comments dropped.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	var out [][2]string
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		cur += " " + strings.TrimSuffix(trimmed, "\\")
		if strings.HasSuffix(trimmed, "\\") {
			continue
		}
		instr, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// dockerfileArgs are the ARG defaults before the first FROM (those FROM lines may use).
func dockerfileArgs(t *testing.T) map[string]string {
	args := map[string]string{}
	for _, in := range dockerfile(t) {
		if in[0] == "FROM" {
			break
		}
		if in[0] == "ARG" {
			k, v, _ := strings.Cut(in[1], "=")
			args[k] = v
		}
	}
	return args
}

func dockerfileFroms(t *testing.T) []string {
	args := dockerfileArgs(t)
	var froms []string
	for _, in := range dockerfile(t) {
		if in[0] != "FROM" {
			continue
		}
		var image string
		for _, f := range strings.Fields(in[1]) {
			if !strings.HasPrefix(f, "--") {
				image = f
				break
			}
		}
		image = os.Expand(image, func(k string) string { return args[k] })
		froms = append(froms, image)
	}
	return froms
}

// finalStage is the instructions after the last FROM.
func finalStage(t *testing.T) [][2]string {
	ins := dockerfile(t)
	last := 0
	for i, in := range ins {
		if in[0] == "FROM" {
			last = i
		}
	}
	return ins[last:]
}

func dockerfileEnv(t *testing.T) map[string]string {
	env := map[string]string{}
	for _, in := range finalStage(t) {
		if in[0] == "ENV" {
			for _, kv := range strings.Fields(in[1]) {
				k, v, ok := strings.Cut(kv, "=")
				require.True(t, ok, "ENV %s: use the KEY=VALUE form", in[1])
				env[k] = v
			}
		}
	}
	return env
}

func dockerfileExpose(t *testing.T) []string {
	var ports []string
	for _, in := range finalStage(t) {
		if in[0] == "EXPOSE" {
			ports = append(ports, strings.Fields(in[1])...)
		}
	}
	return ports
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	froms := dockerfileFroms(t)
	require.GreaterOrEqual(t, len(froms), 2, "a build stage and a final stage")
	require.Equal(t, "scratch", froms[len(froms)-1], "the final image is empty but for what is copied in")

	// The builder's Go can build the module.
	goMod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`).FindSubmatch(goMod)
	require.NotNil(t, want, "go.mod's go line")
	have := dockerfileArgs(t)["GO_VERSION"]
	require.True(t, versionAtLeast(have, string(want[1])), "Dockerfile GO_VERSION %s is older than go.mod's go %s", have, want[1])
	require.True(t, strings.HasPrefix(froms[0], "golang:"+have), "the build stage is golang:GO_VERSION")

	var build, user, entrypoint string
	for _, in := range dockerfile(t) {
		if in[0] == "RUN" && strings.Contains(in[1], "go build") {
			build = in[1]
		}
	}
	for _, in := range finalStage(t) {
		switch in[0] {
		case "USER":
			user = in[1]
		case "ENTRYPOINT":
			entrypoint = in[1]
		}
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}",
		"-o /out/root/usr/local/bin/pipeline ./cmd/pipeline", "-o /out/root/usr/local/bin/healthcheck ./deploy/healthcheck"} {
		require.Contains(t, build, flag, "the build step")
	}
	require.True(t, declaresVar(t, "../cmd/pipeline", "version"), "-X main.version needs `var version` in package main of cmd/pipeline")

	uid, gid, _ := strings.Cut(user, ":")
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		require.NoError(t, err, "USER %q: numeric uid:gid (the image has no /etc/passwd)", user)
		require.NotZero(t, n, "USER %q: not root", user)
	}
	var ep []string
	require.NoError(t, json.Unmarshal([]byte(entrypoint), &ep), "ENTRYPOINT in exec form")
	require.Equal(t, []string{"/usr/local/bin/pipeline"}, ep)

	env := dockerfileEnv(t)
	var ports []string
	for _, k := range []string{"PIPELINE_GRPC_ADDR", "PIPELINE_HTTP_ADDR"} {
		host, port := hostPort(t, env[k])
		require.Equal(t, "0.0.0.0", host, "%s: a container listens on all its interfaces", k)
		ports = append(ports, port)
	}
	require.ElementsMatch(t, ports, dockerfileExpose(t), "EXPOSE the ports the image listens on")
}

func versionAtLeast(have, want string) bool {
	parse := func(v string) []int {
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, _ := strconv.Atoi(p)
			out = append(out, n)
		}
		for len(out) < 3 {
			out = append(out, 0)
		}
		return out
	}
	return slices.Compare(parse(have), parse(want)) >= 0
}

func declaresVar(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name == name {
						return true
					}
				}
			}
		}
	}
	return false
}

// dockerignore matches paths (relative to the repository root, with /) like Docker does for
// the forms .dockerignore uses: a path, a glob, or **/ for any depth; a pattern matching a
// directory excludes what is under it. It rejects the forms it does not know.
type dockerignore []string

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	data, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	var d dockerignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		require.False(t, strings.HasPrefix(line, "!"), ".dockerignore: exceptions are not used (keep the file simple)")
		line = strings.TrimPrefix(line, "/")
		require.NotContains(t, strings.TrimPrefix(line, "**/"), "**", ".dockerignore: ** only as a leading **/")
		d = append(d, line)
	}
	return d
}

func (d dockerignore) excludes(path string) bool {
	parts := strings.Split(path, "/")
	for _, p := range d {
		pat, anyDepth := strings.CutPrefix(p, "**/")
		n := strings.Count(pat, "/") + 1
		for start := 0; start+n <= len(parts) && (start == 0 || anyDepth); start++ {
			// parts[start:start+n] is path itself or a directory above it.
			if ok, _ := filepath.Match(pat, strings.Join(parts[start:start+n], "/")); ok {
				return true
			}
		}
	}
	return false
}

func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	d := readDockerignore(t)
	for _, path := range []string{".git/HEAD", "deploy/.env", ".env", "gen/ts/node_modules/x/index.js", ".bin/buf", "pipeline"} {
		require.True(t, d.excludes(path), ".dockerignore must leave out %s", path)
	}
	// Everything the two binaries of the image are built from.
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{"\n"}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/pipeline", "./deploy/healthcheck")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	inputs := []string{"go.mod", "go.sum", "deploy/Dockerfile"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if rel, err := filepath.Rel(root, line); err == nil && !strings.HasPrefix(rel, "..") {
			inputs = append(inputs, filepath.ToSlash(rel))
		}
	}
	require.Greater(t, len(inputs), 50, "go list found the module's packages")
	for _, path := range inputs {
		require.False(t, d.excludes(path), ".dockerignore leaves out %s, which the image build needs", path)
	}
}
