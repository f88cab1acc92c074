// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// server binaries installed on the machine (initdb, postgres). Nothing is
// downloaded and no system service is touched: each server lives in its own
// temporary directory, listens on a free loopback port and a private Unix
// socket, and is gone when stopped.
//
// The usual shape is one server per test binary and one fresh database per
// test:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t) // skipped if STORE_SKIP_POSTGRES=1
//		...
//	}
//
// PostgreSQL refuses to run as root. When the tests run as root (as they do
// in CI here) the server runs as the unprivileged user "nobody" with its
// directory handed over to it; otherwise it runs as the current user.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SkipEnv, set to 1, turns every NewDatabase into a skip. Without it a
// machine with no PostgreSQL binaries fails the tests, so a missing server
// cannot pass for a green run.
const SkipEnv = "STORE_SKIP_POSTGRES"

// BinDirEnv names a directory holding initdb and postgres, overriding the search.
const BinDirEnv = "PGTEST_BIN_DIR"

// Options tune a server.
type Options struct {
	// Durable keeps fsync and synchronous commit on, as in production, for
	// latency measurements. Off by default: a throwaway server has nothing to
	// lose in a crash, and tests run several times faster without fsync.
	Durable bool
}

// Server is one running PostgreSQL server.
type Server struct {
	dir     string // removed on Stop
	dataDir string
	sockDir string
	port    int
	log     *os.File

	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited

	admin *pgxpool.Pool // connected to the "postgres" database

	stopOnce sync.Once
	stopErr  error
}

// Start initialises a cluster in a new temporary directory and starts a
// server on it. Stop it with Stop.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(cred)
	if err != nil {
		return nil, err
	}
	s := &Server{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
	}
	ok := false
	defer func() {
		if !ok {
			_ = s.Stop()
		}
	}()
	if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := chown(s.sockDir, cred); err != nil {
		return nil, err
	}
	if s.log, err = os.Create(filepath.Join(dir, "postgres.log")); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", s.dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.Env = serverEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}

	// The port is free when we look and may be taken before postgres binds
	// it; a few attempts make that race irrelevant.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.startPostmaster(ctx, bin, cred, opt)
		if err == nil || attempt == 4 || ctx.Err() != nil || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Server) startPostmaster(ctx context.Context, bin string, cred *syscall.Credential, opt Options) error {
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.sockDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "unix_socket_permissions=0777",
		"-c", "log_min_messages=warning",
		"-c", "logging_collector=off",
	}
	if !opt.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// If the test binary dies without stopping us (a panic, a timeout,
		// SIGKILL), the postmaster gets SIGQUIT and shuts down at once
		// rather than outliving it.
		Pdeathsig: syscall.SIGQUIT,
		Setpgid:   true,
	}

	// Pdeathsig fires when the thread that forked the child exits, not the
	// process; a goroutine locked to its thread for the child's lifetime
	// keeps that thread alive.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		pool, err := s.connect(ctx, "postgres")
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				s.admin = pool
				return nil
			}
			pool.Close()
		}
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited during startup:\n%s", s.logTail())
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("pgtest: postgres not ready after 30s: %v\n%s", err, s.logTail())
		}
	}
}

func (s *Server) connect(ctx context.Context, db string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(s.DSN(db))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4
	return pgxpool.NewWithConfig(ctx, cfg)
}

// DSN is the connection string for database db, over TCP on loopback.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the TCP port the server listens on (127.0.0.1 only).
func (s *Server) Port() int { return s.port }

// SocketDir holds the server's Unix socket, for host=SocketDir connections.
func (s *Server) SocketDir() string { return s.sockDir }

// DataDir is the cluster's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Admin is a pool connected as the superuser to the "postgres" database.
func (s *Server) Admin() *pgxpool.Pool { return s.admin }

// CreateDatabase creates a new empty database with a random name and
// returns the name and its DSN.
func (s *Server) CreateDatabase(ctx context.Context) (name, dsn string, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "t_" + hex.EncodeToString(b[:])
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return name, s.DSN(name), nil
}

// DropDatabase drops a database, disconnecting any sessions still on it.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database: %w", err)
	}
	return nil
}

// DatabaseDir is the directory holding database name's data files, for
// tests that inspect the bytes on disk. Run Checkpoint first so that recent
// writes have left the WAL.
func (s *Server) DatabaseDir(ctx context.Context, name string) (string, error) {
	var oid uint32
	if err := s.admin.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", name).Scan(&oid); err != nil {
		return "", fmt.Errorf("pgtest: database %q: %w", name, err)
	}
	return filepath.Join(s.dataDir, "base", strconv.FormatUint(uint64(oid), 10)), nil
}

// Checkpoint forces dirty pages to the data files.
func (s *Server) Checkpoint(ctx context.Context) error {
	_, err := s.admin.Exec(ctx, "CHECKPOINT")
	return err
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10s) and
// removes its directory.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.admin != nil {
			s.admin.Close()
		}
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				s.kill()
				s.stopErr = errors.New("pgtest: postgres did not shut down within 10s; killed")
			}
		}
		if s.log != nil {
			_ = s.log.Close()
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pgtest: %w", err)
		}
	})
	return s.stopErr
}

func (s *Server) kill() {
	// Negative pid: the whole process group, backends included.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
