package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"
)

// TaskRun describes a task command to run and record.
type TaskRun struct {
	Type       string   // install, remove, upgrade or update
	CampaignID string   // the upgrade campaign, if any
	Command    []string // program and arguments
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// Exit codes installers use to say a reboot is needed (Windows Installer's
// ERROR_SUCCESS_REBOOT_REQUIRED and ERROR_SUCCESS_REBOOT_INITIATED).
var rebootExitCodes = map[int]bool{3010: true, 1641: true}

// TaskResult is what running a task gave.
type TaskResult struct {
	Task     Task
	ExitCode int   // -1 when the command did not start or was killed
	Recorded bool  // false when consent was not given
	RunErr   error // why the command did not start, if it did not
}

// RunTask runs the command, measures it and records its outcome: success
// on exit code 0, reboot_required on the installer codes that mean it,
// cancelled when ctx ended or a signal stopped it, failure otherwise with
// the exit code as the error code. The command runs whether or not consent
// was given; the outcome is recorded only with consent.
func (a *Agent) RunTask(ctx context.Context, r TaskRun) (TaskResult, error) {
	if len(r.Command) == 0 {
		return TaskResult{}, errors.New("agent: no command to run")
	}
	if it := a.m.Item("task.type"); it != nil && !contains(it.Type.Values, r.Type) {
		return TaskResult{}, fmt.Errorf("agent: task type %q is not one the manifest declares", r.Type)
	}
	cmd := exec.CommandContext(ctx, r.Command[0], r.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.Stdin, r.Stdout, r.Stderr
	start := time.Now()
	err := cmd.Run()
	res := TaskResult{Task: Task{Type: r.Type, CampaignID: r.CampaignID, Duration: time.Since(start)}, ExitCode: -1}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode, res.Task.Status = 0, TaskSuccess
	case ctx.Err() != nil:
		res.Task.Status, res.Task.ErrorType = TaskCancelled, "cancelled"
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
		switch {
		case res.ExitCode < 0:
			// Ended by a signal: someone stopped it.
			res.Task.Status, res.Task.ErrorType = TaskCancelled, "signal"
		case rebootExitCodes[res.ExitCode]:
			res.Task.Status = TaskRebootRequired
		default:
			res.Task.Status, res.Task.ErrorType, res.Task.ErrorCode = TaskFailure, "exit_code", strconv.Itoa(res.ExitCode)
		}
	default:
		res.RunErr = err
		res.Task.Status, res.Task.ErrorType, res.Task.ErrorCode = TaskFailure, "start_failed", startFailureCode(err)
	}
	err = a.RecordTask(ctx, res.Task)
	switch {
	case errors.Is(err, ErrNoConsent):
		return res, nil
	case err != nil:
		return res, err
	}
	res.Recorded = true
	return res, nil
}

func startFailureCode(err error) string {
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "not_found"
	case errors.Is(err, exec.ErrDot):
		return "relative_path"
	}
	var pe interface{ Timeout() bool }
	if errors.As(err, &pe) {
		return "timeout"
	}
	return "os_error"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
