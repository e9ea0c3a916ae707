package llamatest

import "syscall"

// procAttr puts llama-server in a process group of its own, stopped as a
// whole, and kills it if the test process dies first (a test binary killed
// by a timeout or a closed pipe runs no cleanups).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
