// Package trilliantest runs a real Trillian log server and log signer for
// tests, in-process from Trillian's own server packages, on a fresh database
// created for the test in a real PostgreSQL (127.0.0.1:5432, user postgres)
// or MariaDB/MySQL (127.0.0.1:3306, user root) server, with the schema loaded
// from Trillian's own schema files in the module cache.
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
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/admin"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/mysql"
	"github.com/google/trillian/storage/postgresql"
	"github.com/google/trillian/util/clock"
	"github.com/google/trillian/util/election"
	"github.com/google/trillian/util/election2"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/klog/v2"
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

	mu           sync.Mutex
	signerCancel context.CancelFunc
	signerDone   chan struct{}
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
		// pgxpool's default of 4 connections on this 2-core machine would
		// throttle the log server; production deployments set it the same way.
		pool, err := postgresql.OpenDB(uri + "&pool_max_conns=64")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
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
		mdb, err := mysql.OpenDB(root + name)
		if err != nil {
			t.Fatal(err)
		}
		mdb.SetMaxOpenConns(64)
		t.Cleanup(func() { mdb.Close() })
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

	e.StartSigner()
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

// StartSigner starts the log signer (sequencer) if it is not running.
func (e *Env) StartSigner() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.signerCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	info := tlog.OperationInfo{
		Registry:    e.registry,
		BatchSize:   e.opts.BatchSize,
		NumWorkers:  1,
		RunInterval: e.opts.SequencerInterval,
		TimeSource:  clock.System,
		ElectionConfig: election.RunnerConfig{
			PreElectionPause:   time.Millisecond,
			MasterHoldInterval: time.Minute,
			MasterHoldJitter:   time.Second,
			TimeSource:         clock.System,
		},
	}
	om := tlog.NewOperationManager(info, tlog.NewSequencerManager(e.registry, 0))
	done := make(chan struct{})
	go func() {
		defer close(done)
		om.OperationLoop(ctx)
	}()
	e.signerCancel, e.signerDone = cancel, done
}

// StopSigner kills the log signer: its context is cancelled mid-pass, which
// aborts any transaction it has open, as a crash would.
func (e *Env) StopSigner() {
	e.mu.Lock()
	cancel, done := e.signerCancel, e.signerDone
	e.signerCancel, e.signerDone = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
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
