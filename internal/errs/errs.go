// Package errs holds the domain errors every package returns. They carry meaning, not transport:
// the server maps them to gRPC codes in one place (server/errors.go). Nothing here knows gRPC.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels; match with errors.Is. The typed errors below wrap one of them.
var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: the caller sent a bad value; the error names the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is well formed but the thing is in the wrong state,
	// e.g. an illegal job transition.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrAlreadyExists: a unique thing exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnimplemented: the capability is part of the API but not built yet.
	ErrUnimplemented = errors.New("unimplemented")
	// ErrUnavailable: a dependency (Postgres, Redis, a store) cannot be reached right now; retry.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted: the service is at a limit (a full backlog); retry later.
	ErrResourceExhausted = errors.New("resource exhausted")
)

// NotFoundError says which kind of thing with which id was missing.
type NotFoundError struct {
	Kind string // "job", "source", "document"
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.Kind, e.ID) }
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// NotFound builds a NotFoundError.
func NotFound(kind, id string) error { return &NotFoundError{Kind: kind, ID: id} }

// InvalidArgumentError names the offending field (in the API's snake_case, e.g. "page_token").
type InvalidArgumentError struct {
	Field  string
	Reason string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}
func (e *InvalidArgumentError) Unwrap() error { return ErrInvalidArgument }

// InvalidArgument builds an InvalidArgumentError.
func InvalidArgument(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// FailedPreconditionError explains why the current state forbids the request.
type FailedPreconditionError struct{ Reason string }

func (e *FailedPreconditionError) Error() string { return e.Reason }
func (e *FailedPreconditionError) Unwrap() error { return ErrFailedPrecondition }

// FailedPrecondition builds a FailedPreconditionError.
func FailedPrecondition(format string, args ...any) error {
	return &FailedPreconditionError{Reason: fmt.Sprintf(format, args...)}
}

// Unimplemented says which capability is missing and what to use instead.
func Unimplemented(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnimplemented, fmt.Sprintf(format, args...))
}

// IsFailedPrecondition reports whether err means "wrong state for this request".
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }

// TransientError marks a failure that may go away on its own (network trouble, a rate limit, a
// timeout, an unavailable store): the caller retries it with backoff. RetryAfter, when set, is
// the least wait the remote side asked for (HTTP Retry-After).
type TransientError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient wraps err as a TransientError.
func Transient(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err, RetryAfter: retryAfter}
}

// IsTransient reports whether err (or anything it wraps) is a TransientError, and the wait it
// asked for. Every other error is permanent: retrying it would fail the same way.
func IsTransient(err error) (bool, time.Duration) {
	var te *TransientError
	if errors.As(err, &te) {
		return true, te.RetryAfter
	}
	return false, 0
}
