package lsp

import (
	"context"
	"errors"
	"io"

	"go.uber.org/zap"
)

// Options configures Serve.
type Options struct {
	In       io.Reader
	Out      io.Writer
	Logger   *zap.Logger
	LogLevel zap.AtomicLevel
	Version  string
}

// Serve serves LSP until the client exits.
func Serve(ctx context.Context, opts Options) error { return errors.New("not yet") }
