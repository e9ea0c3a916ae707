//go:build unix

package e2etest

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RunSession runs an editor session, cmd (made with exec.CommandContext),
// in a process group of its own: the editor and the genls it spawns are
// killed as a whole when the context ends, and again after the editor
// exits, so that nothing outlives the test. It returns the session's
// combined output and logs how long it took.
func RunSession(t testing.TB, what string, cmd *exec.Cmd) (string, error) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var output strings.Builder
	cmd.Stdout = &output
	cmd.Stderr = &output
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("%s session: %v", what, time.Since(start).Round(time.Millisecond))
	return output.String(), err
}
