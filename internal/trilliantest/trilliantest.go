// Package trilliantest runs a real Trillian log server and log signer for
// tests, from Trillian's own server packages, on a fresh database
// created for the test in a real PostgreSQL (127.0.0.1:5432, user postgres)
// or MariaDB/MySQL (127.0.0.1:3306, user root) server, with the schema loaded
// from Trillian's own schema files in the module cache.
//
// The log server runs in-process. The log signer runs in-process too
// (internal/trilliansigner), or, with Options.SignerBinary, as a child process
// (cmd/internal/trillian-signer, built by BuildSigner) that KillSigner kills
// with SIGKILL, for fault tests.
//
// When the database server is not reachable the test is skipped with a
// how-to message, or fails if the environment variable CI is "true".
package trilliantest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	tpb "github.com/google/trillian"
	tclient "github.com/google/trillian/client"
	"github.com/google/trillian/extension"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/admin"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/mysql"
	"github.com/google/trillian/storage/postgresql"
	"github.com/google/trillian/util/clock"
	"github.com/google/trillian/util/election2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/klog/v2"

	"github.com/keytrail/keytrail/internal/trilliansigner"
)

// The databases, as the issue fixes them for this machine and CI.
const (
	PostgreSQL = "postgresql"
	MySQL      = "mysql"

	PostgresAddr = "127.0.0.1:5432"
	MySQLAddr    = "127.0.0.1:3306"
)

// DBs lists the database kinds, for table tests.
var DBs = []string{PostgreSQL, MySQL}

// Options tune the signer.
type Options struct {
	// SequencerInterval is the log signer's pass interval. Default 20ms.
	SequencerInterval time.Duration
	// BatchSize is the most leaves sequenced per pass. Default 2000.
	BatchSize int
	// SignerBinary, if set, is the path of a cmd/internal/trillian-signer
	// binary (BuildSigner): the log signer then runs as that child process,
	// with the same settings as the in-process one, its own connection
	// pool, and its stderr in a file whose tail failures quote.
	SignerBinary string
}

// Env is one Trillian deployment: a database, a log server and a log signer.
type Env struct {
	DB       string // PostgreSQL or MySQL
	Addr     string // the log server's gRPC address
	Conn     *grpc.ClientConn
	Log      tpb.TrillianLogClient
	Admin    tpb.TrillianAdminClient
	registry extension.Registry
	opts     Options

	signerArgs []string // the child signer's storage flags
	signerDir  string   // the child signer's ready files and log
	signerUser string   // MySQL: the child signer's database user
	pgPool     *pgxpool.Pool
	myDB       *sql.DB

	mu           sync.Mutex
	signerCancel context.CancelFunc
	signerDone   chan struct{}
	proc         *signerProc
	starts       int
}

// Require skips (or, under CI=true, fails) the test unless the database
// server of kind db is reachable.
func Require(t testing.TB, db string) {
	t.Helper()
	addr := PostgresAddr
	how := "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (or run .ci/run)"
	if db == MySQL {
		addr = MySQLAddr
		how = "start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd (or run .ci/run)"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := fmt.Sprintf("Trillian on %s needs a database server at %s (%v); %s", db, addr, err, how)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Start creates a fresh database of kind db, loads Trillian's schema, and
// starts a log server and a log signer on it. Everything is torn down (the
// database dropped) when the test ends.
func Start(t testing.TB, db string, opts Options) *Env {
	t.Helper()
	Require(t, db)
	quietKlog()
	if opts.SequencerInterval <= 0 {
		opts.SequencerInterval = 20 * time.Millisecond
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2000
	}
	ctx := context.Background()
	name := "keytrail_" + randHex(6)
	schema, err := os.ReadFile(SchemaFile(t, db))
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{DB: db, opts: opts}
	var ls storage.LogStorage
	var as storage.AdminStorage
	switch db {
	case PostgreSQL:
		admin := "postgresql://postgres@" + PostgresAddr + "/postgres?sslmode=disable"
		run := func(uri, stmt string) {
			c, err := pgx.Connect(ctx, uri)
			if err != nil {
				t.Fatalf("postgresql: %v", err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, stmt); err != nil {
				t.Fatalf("postgresql: %s: %v", firstLine(stmt), err)
			}
		}
		run(admin, "CREATE DATABASE "+name)
		t.Cleanup(func() { run(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
		uri := "postgresql://postgres@" + PostgresAddr + "/" + name + "?sslmode=disable"
		run(uri, string(schema))
		// The child signer names itself, for SignerInTransaction.
		e.signerArgs = []string{"--postgresql_uri=" + uri + "&pool_max_conns=16&application_name=" + signerAppName}
		// pgxpool's default of 4 connections on this 2-core machine would
		// throttle the log server; production deployments set it the same way.
		pool, err := postgresql.OpenDB(uri + "&pool_max_conns=64")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		e.pgPool = pool
		ls, as = postgresql.NewLogStorage(pool, monitoring.InertMetricFactory{}), postgresql.NewAdminStorage(pool)
	case MySQL:
		root := "root@tcp(" + MySQLAddr + ")/"
		adm, err := sql.Open("mysql", root+"?multiStatements=true")
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		if _, err := adm.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatalf("mysql: CREATE DATABASE: %v", err)
		}
		t.Cleanup(func() {
			a, err := sql.Open("mysql", root)
			if err == nil {
				a.Exec("DROP DATABASE IF EXISTS " + name)
				a.Close()
			}
		})
		sdb, err := sql.Open("mysql", root+name+"?multiStatements=true")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sdb.Exec(string(schema)); err != nil {
			t.Fatalf("mysql: loading schema: %v", err)
		}
		sdb.Close()
		if opts.SignerBinary != "" {
			// The child signer connects as a user of its own, for
			// SignerInTransaction.
			e.signerUser = name + "_s"
			users := fmt.Sprintf("'%s'@'127.0.0.1', '%s'@'localhost'", e.signerUser, e.signerUser)
			for _, stmt := range []string{"CREATE USER " + users, "GRANT ALL ON " + name + ".* TO " + users} {
				if _, err := adm.Exec(stmt); err != nil {
					t.Fatalf("mysql: %s: %v", stmt, err)
				}
			}
			t.Cleanup(func() {
				a, err := sql.Open("mysql", root)
				if err == nil {
					a.Exec("DROP USER IF EXISTS " + users)
					a.Close()
				}
			})
			e.signerArgs = []string{"--mysql_uri=" + e.signerUser + "@tcp(" + MySQLAddr + ")/" + name, "--mysql_max_conns=16"}
		}
		mdb, err := mysql.OpenDB(root + name)
		if err != nil {
			t.Fatal(err)
		}
		mdb.SetMaxOpenConns(64)
		t.Cleanup(func() { mdb.Close() })
		e.myDB = mdb
		ls, as = mysql.NewLogStorage(mdb, monitoring.InertMetricFactory{}), mysql.NewAdminStorage(mdb)
	default:
		t.Fatalf("trilliantest: unknown database %q", db)
	}
	e.registry = extension.Registry{
		AdminStorage:    as,
		LogStorage:      ls,
		QuotaManager:    quota.Noop(),
		MetricFactory:   monitoring.InertMetricFactory{},
		ElectionFactory: election2.NoopFactory{},
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	tpb.RegisterTrillianLogServer(srv, server.NewTrillianLogRPCServer(e.registry, clock.System))
	tpb.RegisterTrillianAdminServer(srv, admin.New(e.registry, nil))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	e.Addr = lis.Addr().String()

	if opts.SignerBinary != "" {
		e.signerDir = t.TempDir()
	}
	e.StartSigner(t)
	t.Cleanup(e.StopSigner)

	e.Conn, err = grpc.NewClient(e.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Conn.Close() })
	e.Log = tpb.NewTrillianLogClient(e.Conn)
	e.Admin = tpb.NewTrillianAdminClient(e.Conn)
	return e
}

// CreateTree creates and initialises a LOG tree and returns its ID.
func (e *Env) CreateTree(t testing.TB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tree, err := tclient.CreateAndInitTree(ctx, &tpb.CreateTreeRequest{Tree: NewTree("keytrail test")}, e.Admin, e.Log)
	if err != nil {
		t.Fatalf("CreateAndInitTree: %v", err)
	}
	return tree.TreeId
}

// NewTree is the tree keytrail creates: an active LOG tree.
func NewTree(name string) *tpb.Tree {
	return &tpb.Tree{
		TreeState:       tpb.TreeState_ACTIVE,
		TreeType:        tpb.TreeType_LOG,
		DisplayName:     name,
		MaxRootDuration: durationpb.New(time.Hour),
	}
}

// StartSigner starts the log signer if it is not running: in-process, or,
// with Options.SignerBinary, as a child process whose readiness (database
// reachable, sequencing loop running) it waits for.
func (e *Env) StartSigner(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.signerCancel != nil || e.proc != nil {
		return
	}
	cfg := trilliansigner.Config{BatchSize: e.opts.BatchSize, Interval: e.opts.SequencerInterval}
	if e.opts.SignerBinary != "" {
		p, err := e.startProc(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.proc = p
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		trilliansigner.Run(ctx, e.registry, cfg)
	}()
	e.signerCancel, e.signerDone = cancel, done
}

// StopSigner stops the log signer abruptly. In-process, its context is
// cancelled mid-pass, which aborts any transaction it has open; a child
// process is killed with SIGKILL. Start registers it as a cleanup, so no
// child outlives its test.
func (e *Env) StopSigner() {
	e.mu.Lock()
	cancel, done, p := e.signerCancel, e.signerDone, e.proc
	e.signerCancel, e.signerDone, e.proc = nil, nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if p != nil {
		p.kill()
	}
}

// KillSigner kills the child log signer with SIGKILL and waits for it to die.
// The test fails unless a child signer was running until the kill and died of
// it (not of its own accord before).
func (e *Env) KillSigner(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	p := e.proc
	e.proc = nil
	e.mu.Unlock()
	if p == nil {
		t.Fatal("trilliantest: KillSigner: no child signer running (set Options.SignerBinary, and StartSigner after a kill)")
	}
	select {
	case <-p.done:
		p.kill()
		t.Fatalf("trilliantest: the signer (pid %d) exited by itself before the kill: %v\n%s", p.cmd.Process.Pid, p.cmd.ProcessState, p.logTail())
	default:
	}
	p.kill()
	// ExitCode is -1 for a process ended by a signal.
	if ps := p.cmd.ProcessState; ps.ExitCode() != -1 {
		t.Fatalf("trilliantest: the signer (pid %d) was not killed by SIGKILL but ended with %v\n%s", p.cmd.Process.Pid, ps, p.logTail())
	}
}

// CheckSigner fails the test if the child signer is not running (it was not
// started, or it exited by itself).
func (e *Env) CheckSigner(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	if p == nil {
		t.Fatal("trilliantest: no child signer running")
	}
	select {
	case <-p.done:
		t.Fatalf("trilliantest: the signer (pid %d) exited by itself: %v\n%s", p.cmd.Process.Pid, p.cmd.ProcessState, p.logTail())
	default:
	}
}

// signerAppName is the child signer's PostgreSQL application_name.
const signerAppName = "trillian-signer"

// SignerInTransaction reports whether the child signer has a database
// transaction open, as the database server sees it now: in PostgreSQL's
// pg_stat_activity, a session of the signer's application_name idle in a
// transaction block, running a statement after the first of one (the
// transaction began before the statement), or running a write or a locking
// read; in MySQL's information_schema.PROCESSLIST, a
// session of the signer's own user executing a write or a locking read,
// which Trillian's signer only issues inside its sequencing transaction.
// (information_schema.INNODB_TRX would name transactions directly, but
// InnoDB refreshes it at most every 100 ms, too stale to time a kill.)
func (e *Env) SignerInTransaction(ctx context.Context) (bool, error) {
	var n int
	var err error
	switch {
	case e.opts.SignerBinary == "":
		return false, fmt.Errorf("trilliantest: SignerInTransaction needs a child signer (Options.SignerBinary)")
	case e.pgPool != nil:
		err = e.pgPool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1
			AND (state LIKE 'idle in transaction%' OR (state = 'active'
				AND (xact_start < query_start OR query ~* '^\s*(insert|update|delete)|for\s+update')))`, signerAppName).Scan(&n)
	default:
		err = e.myDB.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.PROCESSLIST
			WHERE USER = ? AND COMMAND IN ('Query', 'Execute')
			AND (INFO REGEXP '^[[:space:]]*(INSERT|UPDATE|DELETE|REPLACE)' OR INFO REGEXP 'FOR[[:space:]]+UPDATE')`, e.signerUser).Scan(&n)
	}
	return n > 0, err
}

// SignerPID returns the process ID of the child signer, or 0.
func (e *Env) SignerPID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil {
		return 0
	}
	return e.proc.cmd.Process.Pid
}

// signerProc is cmd/internal/trillian-signer running as a child.
type signerProc struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed once the child is reaped
	lifeline *os.File      // the write end of the child's stdin
	log      string
}

// startProc starts the child signer with the in-process signer's settings and
// waits until it reports ready. Its stdin is a pipe whose write end only this
// process holds: if the test binary dies without its cleanups (a panic, a
// timeout), the child reads end of file and stops (--exit_on_stdin_eof).
func (e *Env) startProc(cfg trilliansigner.Config) (*signerProc, error) {
	e.starts++
	ready := filepath.Join(e.signerDir, fmt.Sprintf("ready-%d", e.starts))
	logPath := filepath.Join(e.signerDir, "signer.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== start %d\n", e.starts)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--storage_system=" + e.DB,
		fmt.Sprintf("--batch_size=%d", cfg.BatchSize),
		fmt.Sprintf("--sequencer_interval=%v", cfg.Interval),
		"--num_sequencers=1",
		"--ready_file=" + ready,
		"--exit_on_stdin_eof",
	}, e.signerArgs...)
	cmd := exec.Command(e.opts.SignerBinary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, logf, logf
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("trilliantest: starting the signer: %v", err)
	}
	p := &signerProc{cmd: cmd, done: make(chan struct{}), lifeline: w, log: logPath}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(b)) == fmt.Sprint(cmd.Process.Pid) {
			return p, nil
		}
		select {
		case <-p.done:
			p.kill()
			return nil, fmt.Errorf("trilliantest: the signer exited before it was ready: %v\n%s", cmd.ProcessState, p.logTail())
		case <-deadline.C:
			p.kill()
			return nil, fmt.Errorf("trilliantest: the signer was not ready within 30s\n%s", p.logTail())
		case <-tick.C:
		}
	}
}

// kill sends SIGKILL (if the child still runs) and reaps the child.
func (p *signerProc) kill() {
	p.cmd.Process.Kill() // os.ErrProcessDone if it already exited
	<-p.done
	p.lifeline.Close()
}

// logTail returns the end of the child's stderr.
func (p *signerProc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(signer log: %v)", err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return "signer log:\n" + string(b)
}

// BuildSigner builds cmd/internal/trillian-signer into a temporary directory
// of t and returns its path, for Options.SignerBinary.
func BuildSigner(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trillian-signer")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/keytrail/keytrail/cmd/internal/trillian-signer")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/internal/trillian-signer: %v\n%s", err, out)
	}
	return bin
}

// SchemaFile returns the path of Trillian's schema for db, in the module cache.
func SchemaFile(t testing.TB, db string) string {
	t.Helper()
	dir := moduleDir(t)
	sub := "storage/postgresql/schema/storage.sql"
	if db == MySQL {
		sub = "storage/mysql/schema/storage.sql"
	}
	return filepath.Join(dir, filepath.FromSlash(sub))
}

var (
	modOnce sync.Once
	modDir  string
	modErr  error
)

// moduleDir finds github.com/google/trillian's source at the version this
// binary was built with.
func moduleDir(t testing.TB) string {
	modOnce.Do(func() {
		version := ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range bi.Deps {
				if d.Path == "github.com/google/trillian" {
					version = d.Version
					if d.Replace != nil {
						version = d.Replace.Version
					}
				}
			}
		}
		if version == "" {
			version = "v1.8.0"
		}
		cache := os.Getenv("GOMODCACHE")
		if cache == "" {
			out, err := exec.Command("go", "env", "GOMODCACHE").Output()
			if err != nil {
				modErr = fmt.Errorf("go env GOMODCACHE: %v", err)
				return
			}
			cache = strings.TrimSpace(string(out))
		}
		modDir = filepath.Join(cache, "github.com", "google", "trillian@"+version)
		if _, err := os.Stat(modDir); err != nil {
			modErr = fmt.Errorf("trillian's source (for its schema files): %v; run 'go mod download github.com/google/trillian'", err)
		}
	})
	if modErr != nil {
		t.Fatal(modErr)
	}
	return modDir
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

var klogOnce sync.Once

// quietKlog keeps Trillian's info logs out of test output.
func quietKlog() {
	klogOnce.Do(func() {
		fs := flagSet()
		klog.InitFlags(fs)
		fs.Set("logtostderr", "false")
		fs.Set("alsologtostderr", "false")
		fs.Set("stderrthreshold", "ERROR")
		klog.SetOutput(discard{})
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
