package lsp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.lsp.dev/jsonrpc2"
)

// maxMessageSize bounds one message's body; a larger one is skipped and
// answered with an error rather than buffered.
const maxMessageSize = 128 << 20

// tolerantStream reads LSP's Content-Length framing like jsonrpc2's header
// stream, with one difference: a well-framed message whose body is not valid
// JSON-RPC is answered with a JSON-RPC error (as the specification asks) and
// skipped, where the header stream would end the whole connection. Only a
// broken frame, after which no message boundary can be found, ends it.
type tolerantStream struct {
	jsonrpc2.Stream // writes and closes
	in              *bufio.Reader
}

func newTolerantStream(in io.Reader, out io.Writer) *tolerantStream {
	return &tolerantStream{Stream: jsonrpc2.NewHeaderStream(rwc{in, out}), in: bufio.NewReaderSize(in, 64<<10)}
}

func (s *tolerantStream) Read(ctx context.Context) (jsonrpc2.Message, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		length, header, err := readHeader(s.in)
		if err != nil {
			return nil, 0, err
		}
		if length > maxMessageSize {
			if _, err := io.CopyN(io.Discard, s.in, int64(length)); err != nil {
				return nil, 0, io.ErrUnexpectedEOF
			}
			s.reject(ctx, jsonrpc2.InvalidRequest, fmt.Sprintf("message of %d bytes is over the %d byte limit", length, maxMessageSize))
			continue
		}
		// A fresh buffer per message: decoded requests borrow it until
		// their handler returns.
		body := make([]byte, length)
		if _, err := io.ReadFull(s.in, body); err != nil {
			return nil, 0, io.ErrUnexpectedEOF
		}
		msg, err := jsonrpc2.DecodeMessage(body)
		if err != nil {
			code := jsonrpc2.ParseError
			if errors.Is(err, jsonrpc2.ErrInvalidRequest) {
				code = jsonrpc2.InvalidRequest
			}
			s.reject(ctx, code, "cannot decode message: "+err.Error())
			continue
		}
		return msg, int64(header + length), nil
	}
}

func (s *tolerantStream) reject(ctx context.Context, code jsonrpc2.Code, msg string) {
	_, _ = s.Stream.Write(ctx, jsonrpc2.NewResponse(jsonrpc2.ID{}, nil, jsonrpc2.NewError(code, msg)))
}

// readHeader reads the header block and returns the body's length and the
// header's size. EOF before any header byte is a clean end of stream.
func readHeader(r *bufio.Reader) (length, size int, err error) {
	length = -1
	for first := true; ; first = false {
		line, err := r.ReadString('\n')
		size += len(line)
		if err != nil {
			if first && line == "" && err == io.EOF {
				return 0, 0, io.EOF
			}
			return 0, 0, io.ErrUnexpectedEOF
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return 0, 0, fmt.Errorf("malformed header line %q", line)
		}
		if strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return 0, 0, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		}
		if size > 64<<10 {
			return 0, 0, errors.New("header too long")
		}
	}
	if length < 0 {
		return 0, 0, errors.New("message without Content-Length")
	}
	return length, size, nil
}
