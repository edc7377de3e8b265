package redistest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// setupWait bounds waiting for a replica to link, a sentinel to learn its
// topology or a cluster to agree: each usually takes well under a second.
const setupWait = 30 * time.Second

// StartReplica starts a redis-server replicating master (plus args, as for
// Start) and waits until its link to the master is up.
func StartReplica(t testing.TB, master *Server, args ...string) *Server {
	t.Helper()
	r := Start(t, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())}, args...)...)
	Eventually(t, setupWait, "replica "+r.Addr()+" linked to master", func() bool {
		info, err := r.DoString("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	return r
}

// StartSentinel starts a sentinel that monitors master under name with
// quorum 1 and short timeouts (down after 300 ms), so that a failover takes
// about a second once the master dies.
func StartSentinel(t testing.TB, name string, master *Server) *Server {
	t.Helper()
	conf := fmt.Sprintf(`bind 127.0.0.1
daemonize no
sentinel monitor %[1]s 127.0.0.1 %[2]d 1
sentinel down-after-milliseconds %[1]s 300
sentinel failover-timeout %[1]s 3000
sentinel parallel-syncs %[1]s 1
`, name, master.Port())
	return StartWith(t, Options{sentinel: conf})
}

// Sentinels is a master, one replica and a sentinel watching them: the
// smallest setup that can fail over.
type Sentinels struct {
	// Name is the master's name at the sentinel ("mymaster").
	Name     string
	Master   *Server
	Replica  *Server
	Sentinel *Server
}

// StartSentinels starts a master, a linked replica and a sentinel, and
// waits until the sentinel knows the replica, so that killing the master
// leads to a failover.
func StartSentinels(t testing.TB) *Sentinels {
	t.Helper()
	// No 5 s wait for more replicas before a diskless full sync.
	master := Start(t, "--repl-diskless-sync-delay", "0")
	replica := StartReplica(t, master)
	s := &Sentinels{Name: "mymaster", Master: master, Replica: replica}
	s.Sentinel = StartSentinel(t, s.Name, master)
	Eventually(t, setupWait, "sentinel knows the replica", func() bool {
		v, err := s.Sentinel.Do("SENTINEL", "REPLICAS", s.Name)
		if err != nil {
			return false
		}
		replicas, _ := v.([]any)
		for _, r := range replicas {
			fields := pairs(r)
			if fields["port"] == strconv.Itoa(replica.Port()) && fields["flags"] == "slave" {
				return true
			}
		}
		return false
	})
	return s
}

// MasterAddr returns the address the sentinel names as the master now.
func (s *Sentinels) MasterAddr() (string, error) {
	v, err := s.Sentinel.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
	if err != nil {
		return "", err
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("sentinel get-master-addr-by-name: reply %v", v)
	}
	return fmt.Sprintf("%v:%v", hp[0], hp[1]), nil
}

// Replicate waits until the replica has processed every write the master
// has taken so far (its replication offset reaches the master's): Redis
// replication is asynchronous, so without it a write just before the
// master dies may be lost in the failover. (WAIT would only cover the
// writes of its own connection.)
func (s *Sentinels) Replicate(t testing.TB) {
	t.Helper()
	want, err := infoInt(s.Master, "master_repl_offset")
	if err != nil {
		t.Fatalf("read master offset: %v", err)
	}
	Eventually(t, setupWait, "replica caught up with the master", func() bool {
		got, err := infoInt(s.Replica, "slave_repl_offset")
		return err == nil && got >= want
	})
}

// infoInt reads one integer field of INFO replication.
func infoInt(srv *Server, field string) (int64, error) {
	info, err := srv.DoString("INFO", "replication")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO replication has no %s", field)
}

// pairs turns a flat [k1 v1 k2 v2 ...] reply into a map.
func pairs(v any) map[string]string {
	arr, _ := v.([]any)
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		v, _ := arr[i+1].(string)
		m[k] = v
	}
	return m
}

// StartCluster starts n master nodes (at least 3) and joins them into one
// Redis Cluster with redis-cli, waiting until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found (apt-get install -y redis-tools): %v", err)
	}
	var nodes []*Server
	args := []string{"--cluster", "create"}
	for range n {
		dir := t.TempDir()
		node := StartWith(t, Options{Dir: dir, Args: []string{
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "1000",
		}})
		nodes = append(nodes, node)
		args = append(args, node.Addr())
	}
	out, err := exec.Command(cli, append(args, "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, node := range nodes {
		Eventually(t, setupWait, "cluster_state:ok on "+node.Addr(), func() bool {
			info, err := node.DoString("CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return nodes
}
