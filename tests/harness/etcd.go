package harness

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// EtcdMember is one member of an etcd cluster started by the harness.
type EtcdMember struct {
	*Process
	Name      string
	ClientURL string
	PeerURL   string
	Dir       string
	args      []string
	bin       string
}

// EtcdCluster is a real etcd cluster (the etcd binary, e.g. Debian's
// etcd-server) on 127.0.0.1.
type EtcdCluster struct {
	Members []*EtcdMember
}

// StartEtcdCluster starts n members with fresh data dirs and waits until the
// cluster serves.
func StartEtcdCluster(t TB, n int) *EtcdCluster {
	t.Helper()
	bin := FindTool(t, "etcd")
	c := &EtcdCluster{}
	var initial []string
	ports := FreePorts(t, 2*n)
	for i := range n {
		m := &EtcdMember{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: "http://" + Addr(ports[2*i]),
			PeerURL:   "http://" + Addr(ports[2*i+1]),
			Dir:       filepath.Join(t.TempDir(), fmt.Sprintf("etcd-%d", i)),
			bin:       bin,
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.args = []string{"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "strata-test", "--heartbeat-interval", "100", "--election-timeout", "1000"}
		m.Process = Start(t, "etcd-"+m.Name, []string{"ETCD_UNSUPPORTED_ARCH=" + etcdArch()}, bin, m.args...)
	}
	for _, m := range c.Members {
		m.WaitReady(t, 60*time.Second, m.healthy)
	}
	return c
}

func (m *EtcdMember) healthy(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
}

// Restart starts a stopped member again with its data.
func (m *EtcdMember) Restart(t TB) {
	t.Helper()
	if !m.Exited() {
		m.Stop(10 * time.Second)
	}
	args := append([]string{}, m.args...)
	for i, a := range args {
		if a == "new" {
			args[i] = "existing"
		}
	}
	m.Process = Start(t, "etcd-"+m.Name, []string{"ETCD_UNSUPPORTED_ARCH=" + etcdArch()}, m.bin, args...)
	m.WaitReady(t, 60*time.Second, m.healthy)
}

// Endpoints are the client URLs of every member.
func (c *EtcdCluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// etcdArch lets etcd 3.4 start on architectures it calls unsupported.
func etcdArch() string {
	return goarch
}
