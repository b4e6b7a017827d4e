package trilliantest

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignerProcessStops checks the child signer's two ways of stopping
// other than SIGKILL: SIGTERM, and the end of its stdin lifeline (what it
// sees when the test process dies without its cleanups). Both must end it
// promptly with exit status 0.
func TestSignerProcessStops(t *testing.T) {
	bin := BuildSigner(t)
	for _, db := range DBs {
		t.Run(db, func(t *testing.T) {
			env := Start(t, db, Options{SignerBinary: bin})
			env.StopSigner()
			for i, how := range []string{"SIGTERM", "stdin EOF"} {
				env.StartSigner(t)
				env.mu.Lock()
				p := env.proc
				env.mu.Unlock()
				switch how {
				case "SIGTERM":
					if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
				default:
					p.lifeline.Close()
				}
				select {
				case <-p.done:
				case <-time.After(15 * time.Second):
					t.Fatalf("%s: the signer (pid %d) did not stop within 15 s\n%s", how, p.cmd.Process.Pid, p.logTail())
				}
				if code := p.cmd.ProcessState.ExitCode(); code != 0 {
					t.Errorf("%s: the signer exited with %v, want status 0\n%s", how, p.cmd.ProcessState, p.logTail())
				}
				// The log file is shared by the starts: one line per stop.
				if log, _ := os.ReadFile(p.log); strings.Count(string(log), "log signer stopped") != i+1 {
					t.Errorf("%s: the signer did not log that it stopped\n%s", how, p.logTail())
				}
				env.mu.Lock()
				env.proc = nil
				env.mu.Unlock()
				p.kill()
			}
		})
	}
}
