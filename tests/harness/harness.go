// Package harness starts the real servers that integration tests talk to —
// MinIO, fake-gcs-server, Azurite, etcd — on 127.0.0.1 with free ports and
// private data directories, and stops them when the test ends.
//
// Binaries are looked up in $STRATA_TOOLS/bin (default ~/.cache/strata-tools/bin,
// filled by scripts/install-tools.sh) and then in PATH. A missing tool fails the
// test with the command that installs it, unless STRATA_ALLOW_SKIP=1, where it
// skips instead.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TB is the part of testing.TB the harness needs; *testing.T and *testing.B
// satisfy it, and so does a TestMain adapter (see Main).
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var _ TB = (*testing.T)(nil)

// ToolsDir is where scripts/install-tools.sh puts the binaries.
func ToolsDir() string {
	if d := os.Getenv("STRATA_TOOLS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "strata-tools")
}

// FindTool returns the path of a binary from the tools dir or PATH, or fails
// (or skips, with STRATA_ALLOW_SKIP=1) with the command that installs it.
func FindTool(t TB, name string) string {
	t.Helper()
	p := filepath.Join(ToolsDir(), "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed; run `bash scripts/install-tools.sh` (or `make tools`)", name)
	if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
		t.Skipf("%s", msg)
	}
	t.Fatalf("%s", msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// A test that needs several ports at once must use FreePorts: two FreePort
// calls in a row may return the same port.
func FreePort(t TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. All n listeners are held open until every port is chosen, so the kernel
// cannot hand the same port out twice.
func FreePorts(t TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: find a free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Process is a server started by the harness.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // file with its stdout and stderr

	mu     sync.Mutex
	exited chan struct{}
	err    error
}

// Start runs a binary with its output in a log file under the test's temp dir.
// The process is killed (whole process group) when the test ends.
func Start(t TB, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("harness: start %s: %v", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, Log: logPath, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) {
	if p.Cmd.Process != nil && !p.Exited() {
		_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
	}
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout before killing.
func (p *Process) Stop(timeout time.Duration) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Tail returns the last n bytes of the process log, for failure messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// WaitReady polls ready until it returns nil, the process exits, or timeout.
func (p *Process) WaitReady(t TB, timeout time.Duration, ready func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("harness: %s exited during start-up: %v\n%s", p.Name, p.err, p.Tail(4000))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("harness: %s not ready after %s: %v\n%s", p.Name, timeout, last, p.Tail(4000))
}

// DialReady is a readiness check that succeeds once addr accepts TCP.
func DialReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// Addr formats 127.0.0.1:port.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Main runs fn (which starts servers) and then the tests, cleaning up after:
//
//	func TestMain(m *testing.M) { harness.Main(m, func(t harness.TB) { srv = harness.StartMinIO(t) }) }
func Main(m *testing.M, fn func(t TB)) {
	tb, err := NewProgramTB()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if s, ok := r.(skipSignal); ok {
					fmt.Fprintln(os.Stderr, "SKIP:", string(s))
					code = 0
					return
				}
				fmt.Fprintln(os.Stderr, "harness:", r)
				code = 2
			}
		}()
		fn(tb)
		return m.Run()
	}()
	tb.Close()
	os.Exit(code)
}

type skipSignal string

// ProgramTB is a TB for programs that are not tests (the benchmark suite,
// TestMain): Fatalf and Skipf panic, Cleanup functions run at Close.
type ProgramTB struct {
	dir      string
	mu       sync.Mutex
	cleanups []func()
}

// NewProgramTB returns a ProgramTB with a fresh temp dir; Close removes it.
func NewProgramTB() (*ProgramTB, error) {
	dir, err := os.MkdirTemp("", "strata-harness-")
	if err != nil {
		return nil, err
	}
	return &ProgramTB{dir: dir}, nil
}

// Helper does nothing.
func (m *ProgramTB) Helper() {}

// Logf prints to stderr.
func (m *ProgramTB) Logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// Fatalf panics with the message.
func (m *ProgramTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// Skipf panics with a skip signal (Main turns it into exit status 0).
func (m *ProgramTB) Skipf(format string, a ...any) { panic(skipSignal(fmt.Sprintf(format, a...))) }

// Cleanup registers f to run at Close, last registered first.
func (m *ProgramTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

// TempDir returns a new directory under the program's temp dir.
func (m *ProgramTB) TempDir() string {
	d, err := os.MkdirTemp(m.dir, "t")
	if err != nil {
		panic(err)
	}
	return d
}

// Close runs the cleanups and removes the temp dir.
func (m *ProgramTB) Close() {
	m.mu.Lock()
	cl := m.cleanups
	m.cleanups = nil
	m.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		cl[i]()
	}
	os.RemoveAll(m.dir)
}
