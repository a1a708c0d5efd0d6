package milvus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// Milvus error codes (the Status.code field of Milvus >= 2.3) that matter here.
const (
	codeServiceNotReady = 1
	codeServiceUnavail  = 2
	codeMemoryLimit     = 3
	codeRequestLimit    = 4
	codeRateLimit       = 8
	codeIndexNotFound   = 700
)

// StatusError is a failure Milvus reported inside a response (its Status), rather than as a gRPC
// error. The SDK flattens those into bare strings; the store keeps the codes so it can tell a
// missing index from a broken one, and a busy server from a bad request.
type StatusError struct {
	Method    string             // the RPC, e.g. "/milvus.proto.milvus.MilvusService/Search"
	Code      int32              // Milvus error code (0 on servers before 2.3)
	ErrorCode commonpb.ErrorCode // the legacy code, still sent by every server
	Reason    string
	Retriable bool // the server's own word that trying again may work
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s (code %d/%s)", e.Reason, e.Code, e.ErrorCode)
}

func (e *StatusError) transient() bool {
	if e.Retriable || e.ErrorCode == commonpb.ErrorCode_RateLimit {
		return true
	}
	switch e.Code {
	case codeServiceNotReady, codeServiceUnavail, codeMemoryLimit, codeRequestLimit, codeRateLimit:
		return true
	}
	return false
}

// statusInterceptor turns a failure status inside a response into a *StatusError.
func statusInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	var st *commonpb.Status
	switch r := reply.(type) {
	case *commonpb.Status:
		st = r
	case interface{ GetStatus() *commonpb.Status }:
		st = r.GetStatus()
	}
	if st == nil {
		return nil
	}
	// The legacy code is deprecated, but servers still send it and the SDK decides by it alone.
	//lint:ignore SA1019 see above
	legacy := st.GetErrorCode()
	if legacy == commonpb.ErrorCode_Success && st.GetCode() == 0 {
		return nil
	}
	return &StatusError{Method: method, Code: st.GetCode(), ErrorCode: legacy,
		Reason: st.GetReason(), Retriable: st.GetRetriable()}
}

func isIndexNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Code == codeIndexNotFound || se.ErrorCode == commonpb.ErrorCode_IndexNotExist)
}

// wrapErr names the operation and marks failures that may pass (unreachable, timed out, busy)
// as errs.Transient; the rest are permanent.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("milvus %s: %w", op, err)
	if isTransient(err) {
		return errs.Transient(err, 0)
	}
	return err
}

func isTransient(err error) bool {
	if se := (*StatusError)(nil); errors.As(err, &se) {
		return se.transient()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
			return true
		case codes.ResourceExhausted:
			// Busy, except a request over the message size limit: that one never fits.
			return !strings.Contains(st.Message(), "larger than max")
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
