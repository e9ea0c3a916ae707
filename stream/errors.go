package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// IsSetupError reports whether err is about the endpoint's setup rather
// than one generation: the endpoint unreachable, its backend undetectable,
// the token missing or rejected, the URL or model wrong. Those are what
// `genls doctor` diagnoses.
func IsSetupError(err error) bool {
	var se *StatusError
	var ce *ConnectionError
	var de *DetectionError
	switch {
	case errors.As(err, &se):
		switch se.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return true
		}
		return false
	case errors.As(err, &ce):
		return !ce.MidStream
	}
	return errors.As(err, &de)
}

// StatusError is an HTTP error status answered before any streaming.
type StatusError struct {
	StatusCode int
	URL        string
	// TokenSent says whether the request carried an API token, which
	// decides what a 401 or 403 means.
	TokenSent bool
	// Message is the server's own message, extracted from its JSON body when
	// there is one.
	Message string
	// EstimatedTime is TGI/HF's "model is loading" estimate, in seconds.
	EstimatedTime float64
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	switch code := e.StatusCode; {
	case (code == http.StatusUnauthorized || code == http.StatusForbidden) && !e.TokenSent:
		return fmt.Sprintf("the endpoint wants an API token and none was sent (set HF_TOKEN, or run `huggingface-cli login`): %d %s", code, msg)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Sprintf("the endpoint rejected the token (set HF_TOKEN to a valid one, or run `huggingface-cli login`): %d %s", code, msg)
	case code == http.StatusNotFound:
		return fmt.Sprintf("%s answered 404: wrong endpoint URL or model name (%s)", e.URL, msg)
	case code == http.StatusUnprocessableEntity:
		return fmt.Sprintf("the endpoint refused the request: %s", msg)
	case code == http.StatusFailedDependency:
		return fmt.Sprintf("the model failed to generate (424): %s", msg)
	case code == http.StatusTooManyRequests:
		return fmt.Sprintf("the endpoint is overloaded or rate-limited (429): %s; try again later", msg)
	case code == http.StatusServiceUnavailable && e.EstimatedTime > 0:
		return fmt.Sprintf("the model is still loading (estimated %.0f s more): %s; try again later", e.EstimatedTime, msg)
	case code >= 500:
		return fmt.Sprintf("the endpoint failed (%d): %s", code, msg)
	}
	return fmt.Sprintf("the endpoint answered %d: %s", e.StatusCode, msg)
}

// newStatusError reads what servers put in an error body: {"error": "..."},
// {"error": {"message": ...}}, {"message": ...}, {"detail": ...}, or text.
func newStatusError(code int, url string, tokenSent bool, body []byte) *StatusError {
	e := &StatusError{StatusCode: code, URL: url, TokenSent: tokenSent}
	var obj struct {
		Error         json.RawMessage `json:"error"`
		Message       string          `json:"message"`
		Detail        json.RawMessage `json:"detail"`
		EstimatedTime float64         `json:"estimated_time"`
	}
	if json.Unmarshal(body, &obj) == nil {
		e.EstimatedTime = obj.EstimatedTime
		switch {
		case len(obj.Error) > 0:
			var se *ServerError
			if errors.As(openAIError(obj.Error), &se) {
				e.Message = se.Message
			}
		case obj.Message != "":
			e.Message = obj.Message
		case len(obj.Detail) > 0:
			var s string
			if json.Unmarshal(obj.Detail, &s) == nil {
				e.Message = s
			} else {
				e.Message = string(obj.Detail)
			}
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	return e
}

// ServerError is an error the server sent inside a successful stream, such as
// TGI's {"error": ..., "error_type": "validation" | "generation" | "overloaded"}.
type ServerError struct {
	Type    string
	Message string
}

func (e *ServerError) Error() string {
	switch e.Type {
	case "validation":
		return "the endpoint refused the request: " + e.Message
	case "overloaded":
		return "the endpoint is overloaded: " + e.Message + "; try again later"
	case "generation":
		return "the model failed while generating: " + e.Message
	case "":
		return "the endpoint reported an error: " + e.Message
	}
	return fmt.Sprintf("the endpoint reported a %s error: %s", e.Type, e.Message)
}

// MalformedEventError is an event whose data is not what the protocol says.
type MalformedEventError struct {
	Data string
	Err  error
}

func (e *MalformedEventError) Error() string {
	data := e.Data
	if len(data) > 120 {
		data = data[:120] + "…"
	}
	return fmt.Sprintf("malformed event from the endpoint (%v): %q", e.Err, data)
}

func (e *MalformedEventError) Unwrap() error { return e.Err }

// ErrNoFinalEvent: the stream ended cleanly but never said it was done.
var ErrNoFinalEvent = errors.New("the stream ended without a final event (the connection was closed early)")

// IdleTimeoutError: no bytes arrived for Timeout.
type IdleTimeoutError struct{ Timeout time.Duration }

func (e *IdleTimeoutError) Error() string {
	return fmt.Sprintf("the endpoint sent nothing for %s; gave up (the idle timeout is configurable)", e.Timeout)
}

// ConnectionError: the endpoint could not be reached, or the connection broke
// during the stream.
type ConnectionError struct {
	URL       string
	MidStream bool
	Err       error
}

func (e *ConnectionError) Error() string {
	if e.MidStream {
		return fmt.Sprintf("the connection to %s dropped during the stream: %v", e.URL, e.Err)
	}
	return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// DetectionError: an endpoint with backend auto answered none of the probes
// that tell the backends apart.
type DetectionError struct {
	URL string
	// Err joins the probes' failures; nil when the server answered them all
	// but not like any known server.
	Err error
}

func (e *DetectionError) Error() string {
	why := "no answer looked like a known server"
	if e.Err != nil {
		why = strings.ReplaceAll(e.Err.Error(), "\n", "; ") // errors.Join's lines
	}
	return fmt.Sprintf("could not detect the endpoint's backend at %s (tried /info, /v1/models, /api/tags): %s; set backend explicitly", e.URL, why)
}

func (e *DetectionError) Unwrap() error { return e.Err }
