// Package fault gives each error that reaches the user a kind, which
// decides the command's exit code, and a hint: one line on how to fix it.
//
// An error's kind is the kind of the first error in its chain that has one
// (errors.As with Kinded); an error of no kind is an internal one. Its hint
// is the first non-empty hint in its chain (Hinter). Every error type that
// carries advice implements Hinter; only package main turns kinds into exit
// codes (README.md, "Exit codes").
package fault

import (
	"errors"
	"fmt"
)

// Kind is what went wrong, as the exit code tells it.
type Kind int

const (
	// Internal is an error of no kind: a bug, or a machine lollypops
	// cannot work on (no temporary directory, an unreadable executable).
	// Nothing was deployed.
	Internal Kind = iota
	// Input is what lollypops was given to deploy: the flake or inventory
	// cannot be read or is invalid, a program is missing. Nothing was
	// deployed.
	Input
	// Usage is the command line: an unknown flag, task, host, tag or step,
	// a bad flag value. Nothing was run.
	Usage
	// HostsFailed is a run in which at least one host failed; the summary
	// said which, and the other hosts ran.
	HostsFailed
)

func (k Kind) String() string {
	switch k {
	case Input:
		return "input"
	case Usage:
		return "usage"
	case HostsFailed:
		return "hosts failed"
	}
	return "internal"
}

// Kinded is an error that knows its kind.
type Kinded interface {
	error
	Kind() Kind
}

// Hinter is an error that says how to fix it; "" when it cannot.
type Hinter interface {
	error
	Hint() string
}

// Error is an error with a kind and an optional hint. An Error without a
// message and without a cause has been reported already (a run's summary
// said which hosts failed): it decides the exit code and prints nothing.
type Error struct {
	K      Kind
	Msg    string
	Advice string
	// Code, for HostsFailed with -x, is the failed command's own exit
	// status, which then is the exit code.
	Code int
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Err != nil:
		return e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return e.Msg
	case e.Err != nil:
		return e.Err.Error()
	}
	return ""
}

func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Kind() Kind    { return e.K }

// Hint is the error's own advice, else its cause's.
func (e *Error) Hint() string {
	if e.Advice != "" {
		return e.Advice
	}
	return HintOf(e.Err)
}

// Reported reports whether the error has nothing left to print.
func (e *Error) Reported() bool { return e.Msg == "" && e.Err == nil }

// Usagef is a command line lollypops cannot run, with a hint.
func Usagef(hint, format string, args ...any) error {
	return &Error{K: Usage, Msg: fmt.Sprintf(format, args...), Advice: hint}
}

// Inputf is something lollypops was given that it cannot deploy.
func Inputf(hint, format string, args ...any) error {
	return &Error{K: Input, Msg: fmt.Sprintf(format, args...), Advice: hint}
}

// As gives err the kind k unless it has one already, keeping its text.
func As(k Kind, err error) error {
	if err == nil {
		return nil
	}
	var kd Kinded
	if errors.As(err, &kd) {
		return err
	}
	return &Error{K: k, Err: err}
}

// KindOf returns the kind of the first error in err's chain that has one;
// Internal when none has.
func KindOf(err error) Kind {
	var kd Kinded
	if errors.As(err, &kd) {
		return kd.Kind()
	}
	return Internal
}

// HintOf returns the first non-empty hint in err's chain.
func HintOf(err error) string {
	for err != nil {
		if h, ok := err.(Hinter); ok {
			if s := h.Hint(); s != "" {
				return s
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if s := HintOf(e); s != "" {
					return s
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}

// Reported reports whether err has been reported already (Error.Reported).
func Reported(err error) bool {
	fe, ok := err.(*Error)
	return ok && fe.Reported()
}
