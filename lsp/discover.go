package lsp

import (
	"errors"

	"go.lsp.dev/protocol"

	"github.com/genls/genls/stream"
)

// discovery says where a client for url, when it is empty, looks for a model
// server (GENLS_LOCAL_PORTS, else the usual ports), and has it tell the
// user what it chose. Clients choose at their first generation, never at
// start-up.
func (s *server) discovery(url string) (stream.DiscoverOptions, error) {
	if url != "" {
		return stream.DiscoverOptions{}, nil
	}
	ports, err := stream.LocalPorts(s.getenv)
	return stream.DiscoverOptions{Ports: ports, OnChoice: s.announceChoice}, err
}

// announceChoice tells the user what a client with no endpoint.url chose
// (the client logs it), once: a client made for new settings that chooses
// the same endpoint again says nothing.
func (s *server) announceChoice(c stream.Choice) {
	ep := c.Endpoint
	key := ep.URL + " " + string(ep.Backend) + " " + ep.Model
	s.mu.Lock()
	told := s.announced == key
	s.announced = key
	s.mu.Unlock()
	if !told {
		s.showMessage(protocol.MessageTypeInfo, "no endpoint.url set; using "+c.String())
	}
}

// noEndpointMessage words stream's NoEndpointError for an editor's user,
// who sets the endpoint's URL in the settings.
func noEndpointMessage(err error) (string, bool) {
	var none *stream.NoEndpointError
	if !errors.As(err, &none) {
		return "", false
	}
	return none.Message("set endpoint.url"), true
}
