//go:build unix && !linux

package llamatest

import "syscall"

// procAttr puts llama-server in a process group of its own, stopped as a
// whole.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
