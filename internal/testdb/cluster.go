package testdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// dirPrefix names the temporary directories of ephemeral clusters, so that
// a later run can find and remove those whose test binary died.
const dirPrefix = "shiplock-testdb-"

// adminUser is the superuser of an ephemeral cluster, trusted on loopback.
const adminUser = "postgres"

// pgHBA trusts the admin role and asks every other role for a SCRAM
// password, so that password tests see real authentication failures;
// members of cleartextGroup are asked for it in cleartext.
const pgHBA = `# written by shiplock internal/testdb
local all ` + adminUser + `              trust
host  all ` + adminUser + ` 127.0.0.1/32 trust
host  all +` + cleartextGroup + ` 127.0.0.1/32 password
local all all                  scram-sha-256
host  all all       127.0.0.1/32 scram-sha-256
`

// cluster is an ephemeral PostgreSQL cluster: a data directory made by initdb
// and a postmaster serving it on 127.0.0.1.
type cluster struct {
	bindir string
	dir    string // owns data/, the socket and postgres.log
	cred   *syscall.Credential
	// crashSafe keeps synchronous_commit on, so that a transaction that
	// reported its commit survives Crash (fsync stays off: the data only
	// has to outlive the server process, not the machine).
	crashSafe bool

	mu   sync.Mutex
	port int
	proc *process // nil while stopped
}

// process is a running postmaster.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done is closed
}

// findBindir returns the directory holding initdb and postgres: that of the
// initdb found in PATH (symlinks resolved), else the newest
// /usr/lib/postgresql/*/bin (Debian and Ubuntu do not put it in PATH).
func findBindir() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(p))
		}
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(debian, func(i, j int) bool { return pgVersion(debian[i]) > pgVersion(debian[j]) })
	candidates = append(candidates, debian...)
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", &unavailableError{fmt.Sprintf(
		"testdb: no PostgreSQL server: set %s, or install PostgreSQL so that initdb is in PATH or /usr/lib/postgresql/*/bin",
		EnvPostgresURL)}
}

// pgVersion returns the major version in /usr/lib/postgresql/VERSION/bin.
func pgVersion(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// newCluster runs initdb into a new temporary directory. It does not start
// the cluster.
func newCluster(ctx context.Context, bindir string, crashSafe bool) (_ *cluster, err error) {
	c := &cluster{bindir: bindir, crashSafe: crashSafe}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		c.cred, err = lookupCredential(adminUser)
		if err != nil {
			return nil, err
		}
	}
	removeStaleDirs()
	c.dir, err = os.MkdirTemp(socketParent(), dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(c.dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(c.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, fmt.Errorf("testdb: %w", err)
		}
	}

	cmd := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"),
		"-D", c.dataDir(), "-U", adminUser, "--auth=trust",
		"-E", "UTF8", "--locale=C",
		"--no-sync", // a test cluster need not survive a power cut
		"--no-instructions")
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testdb: initdb: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return nil, fmt.Errorf("testdb: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(filepath.Join(c.dataDir(), "pg_hba.conf"), int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, fmt.Errorf("testdb: %w", err)
		}
	}
	return c, nil
}

func (c *cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// lookupCredential returns the credential of the OS user name.
func lookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("testdb: running as root, but the OS user %q to run PostgreSQL as is missing: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("testdb: user %q: %w", name, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// socketParent returns the directory to create cluster directories in:
// os.TempDir unless that makes the Unix socket path too long (107 bytes).
func socketParent() string {
	dir := os.TempDir()
	if len(dir)+len("/"+dirPrefix+"0123456789/.s.PGSQL.65535") > 107 {
		return "/tmp"
	}
	return dir
}

// removeStaleDirs removes the directories of clusters whose test binary has
// exited, killing their postmaster if it is somehow still running. It is best
// effort: errors are ignored.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(socketParent(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			// Between MkdirTemp and writing owner.pid, or not ours.
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(dir)
			}
			continue
		}
		pid, err := strconv.Atoi(string(owner))
		if err != nil || processAlive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(pm), "\n")
			if pid, err := strconv.Atoi(line); err == nil && processAlive(pid) {
				// Only if it is the postmaster of this directory: pids are
				// reused.
				if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
					bytes.Contains(cmdline, []byte(dir)) {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		os.RemoveAll(dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// adminURL returns the superuser URL of the cluster's database db.
func (c *cluster) adminURL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", adminUser, c.port, db)
}

// errPortTaken means that another process took the port first.
var errPortTaken = errors.New("port taken")

// start starts the postmaster and waits until it accepts connections. The
// first start picks a free port (and another one if it loses a race for it);
// later starts reuse it, so that clients can reconnect to the same address.
func (c *cluster) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return errors.New("testdb: cluster already running")
	}
	pickPort := c.port == 0
	for attempt := 1; ; attempt++ {
		if pickPort {
			port, err := freePort()
			if err != nil {
				return fmt.Errorf("testdb: pick a port: %w", err)
			}
			c.port = port
		}
		err := c.startOnce(ctx)
		if err == nil {
			return nil
		}
		if !pickPort || attempt == 3 || !errors.Is(err, errPortTaken) {
			return err
		}
	}
}

func (c *cluster) startOnce(ctx context.Context) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testdb: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	logStart, _ := logFile.Seek(0, 2)

	syncCommit := "off"
	if c.crashSafe {
		syncCommit = "on"
	}
	cmd := exec.Command(filepath.Join(c.bindir, "postgres"),
		"-D", c.dataDir(),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		// Durability against power loss is worthless for a throw-away
		// cluster; speed is not.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit="+syncCommit,
		// Parallel tests each hold a few connections.
		"-c", "max_connections=300",
	)
	cmd.Dir = c.dir
	cmd.Env = []string{"LC_ALL=C"}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		// Should the test binary die without running Main or the test's
		// cleanups, the postmaster shuts down at once.
		Pdeathsig: syscall.SIGQUIT,
		Setpgid:   true, // not killed by a Ctrl-C meant for go test's group
	}

	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testdb: start postgres: %w", err)
	}

	if err := waitReady(ctx, c.adminURL("postgres"), p); err != nil {
		stopProcess(p, syscall.SIGQUIT)
		log, _ := os.ReadFile(logPath)
		if int(logStart) <= len(log) {
			log = log[logStart:]
		}
		if bytes.Contains(log, []byte("could not bind")) {
			// The only way to tell: the postmaster reports it in its log.
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("testdb: start postgres on port %d: %w\n%s", c.port, err, log)
	}
	c.proc = p
	return nil
}

// startProcess starts cmd, whose SysProcAttr has a Pdeathsig, and returns
// it running.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not
		// the process: lock this goroutine to its thread and keep it (and
		// so the thread) alive for as long as the child runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, <-started
}

// waitReady waits until the postmaster p accepts connections at url, exits,
// or a minute passes.
func waitReady(ctx context.Context, url string, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		// There is nothing to watch but the server itself: poll it.
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, url)
		cancelAttempt()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// running reports whether the postmaster runs.
func (c *cluster) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil
}

// stop shuts the postmaster down with sig (SIGINT: fast shutdown, SIGQUIT:
// immediate) and waits for it to exit. Stopping a stopped cluster does
// nothing.
func (c *cluster) stop(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	err := stopProcess(c.proc, sig)
	c.proc = nil
	return err
}

// stopProcess signals p and waits for it to exit, with SIGKILL after 30 s.
func stopProcess(p *process, sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testdb: signal postgres: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	p.cmd.Process.Kill()
	<-p.done
	return errors.New("testdb: postgres did not shut down in 30s; killed it")
}

// destroy stops the cluster and removes its directory.
func (c *cluster) destroy() error {
	err := c.stop(syscall.SIGINT)
	return errors.Join(err, os.RemoveAll(c.dir))
}
