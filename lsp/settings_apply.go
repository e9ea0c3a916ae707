package lsp

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.lsp.dev/protocol"
	"go.uber.org/zap"

	"github.com/genls/genls/stream"
)

// applySettings validates raw settings and makes them current. A bad setting
// is shown to the user, naming its key, and the previous settings stay. When
// the settings would send the API token to a host it has not been sent to
// before, the user is asked first.
func (s *server) applySettings(raw json.RawMessage, from string) {
	cfg, err := parseSettings(raw)
	if err != nil {
		s.log.Warn("rejected settings", zap.String("from", from), zap.Error(err))
		s.showMessage(protocol.MessageTypeError, err.Error())
		return
	}
	if keys := unknownKeys(raw); len(keys) > 0 {
		s.showMessage(protocol.MessageTypeWarning, fmt.Sprintf("unknown setting %s (ignored); see the configuration reference in genls's README", strings.Join(keys, ", ")))
	}
	client, err := s.newClient(cfg)
	if err != nil {
		err = &settingError{Key: "endpoint", Err: err}
		s.log.Warn("rejected settings", zap.String("from", from), zap.Error(err))
		s.showMessage(protocol.MessageTypeError, err.Error())
		return
	}
	for _, p := range cfg.problems {
		s.log.Warn("bad action", zap.Error(p))
		s.showMessage(protocol.MessageTypeWarning, p.Error())
	}
	s.actionClients(cfg, client)
	if cfg.settings.Log.File != "" && s.setLogFile != nil {
		if err := s.setLogFile(cfg.settings.Log.File); err != nil {
			s.showMessage(protocol.MessageTypeError, (&settingError{Key: "log.file", Err: err}).Error())
			return
		}
	}
	host := client.TokenHost()
	s.mu.Lock()
	trusted := s.tokenHost
	s.mu.Unlock()
	s.mu.Lock()
	if client.HasToken() && trusted != "" && host != trusted {
		// One question at a time: settings that arrive while it is open
		// (the user editing the URL, then the backend, then the model)
		// replace the settings it answers for.
		asking := s.consent != nil
		s.consent = &consent{cfg: cfg, client: client, from: from}
		s.mu.Unlock()
		if !asking {
			// Asking is a request to the client: never from the read loop.
			go s.confirmHost(trusted)
		}
		return
	}
	// These settings need no question; an open one no longer matters.
	s.consent = nil
	s.mu.Unlock()
	s.install(cfg, client, from)
}

// consent is settings waiting for the user to agree that the token may go
// to their endpoint's host.
type consent struct {
	cfg    *config
	client *stream.Client
	from   string
}

// actionClients gives each action with an endpoint of its own its client.
// The token goes to an action's endpoint only if it is the main endpoint's
// host or the action names a token of its own: an action, like any
// setting, must not carry the token somewhere the user has not agreed to.
func (s *server) actionClients(cfg *config, main *stream.Client) {
	kept := cfg.actions[:0]
	for _, a := range cfg.actions {
		if a.endpoint != nil {
			acfg := *cfg
			acfg.settings.Endpoint = *a.endpoint
			client, err := s.newClient(&acfg)
			if err == nil && client.HasToken() && a.endpoint.Token == "" && client.TokenHost() != main.TokenHost() {
				acfg.noToken = true
				client, err = s.newClient(&acfg)
			}
			if err != nil {
				s.showMessage(protocol.MessageTypeWarning, fmt.Sprintf("invalid setting actions (%q) endpoint: %v; that action is left out, the others work", a.title, err))
				continue
			}
			a.client = client
		}
		kept = append(kept, a)
	}
	cfg.actions = kept
}

// confirmHost asks the user before the token travels from the host from
// to the host of the settings waiting for consent, and installs them if
// the user agrees. If they moved to yet another host while the question
// was open, it asks again about that one.
func (s *server) confirmHost(from string) {
	const send = "Send token"
	keep := "Keep " + from
	s.mu.Lock()
	c := s.consent
	s.mu.Unlock()
	for c != nil {
		to := c.client.TokenHost()
		var choice *protocol.MessageActionItem
		params := &protocol.ShowMessageRequestParams{
			Type:    protocol.MessageTypeWarning,
			Message: fmt.Sprintf("genls: the settings (%s) move the endpoint from %s to %s. Send your API token to %s?", c.from, from, to, to),
			Actions: []protocol.MessageActionItem{{Title: send}, {Title: keep}},
		}
		_, err := s.conn.Call(s.ctx, "window/showMessageRequest", params, &choice)
		s.mu.Lock()
		latest := s.consent
		if latest == nil || latest.client.TokenHost() == to {
			s.consent = nil
		}
		s.mu.Unlock()
		switch {
		case latest == nil:
			s.log.Info("the token question was answered after settings that need none; answer ignored", zap.String("to", to))
			return
		case latest.client.TokenHost() != to:
			c = latest // asked about a host the settings have left
			continue
		case err != nil || choice == nil || choice.Title != send:
			s.log.Warn("endpoint change not confirmed; keeping the previous settings", zap.String("to", to), zap.Error(err))
			s.showMessage(protocol.MessageTypeInfo, fmt.Sprintf("kept the endpoint at %s; the token was not sent to %s", from, to))
			return
		}
		s.install(latest.cfg, latest.client, latest.from)
		return
	}
}

func (s *server) install(cfg *config, client *stream.Client, from string) {
	if w := client.InsecureTokenWarning(); w != "" {
		s.showMessage(protocol.MessageTypeWarning, w)
	}
	if s.level != nil && cfg.settings.Log.Level != "" {
		_ = s.level.UnmarshalText([]byte(cfg.settings.Log.Level))
	}
	ep := client.Endpoint()
	s.mu.Lock()
	s.cfg = cfg
	s.client = client
	if client.HasToken() {
		s.tokenHost = client.TokenHost()
	}
	s.mu.Unlock()
	s.completions.forgetAll() // another model may complete differently
	s.notes.Go(s.syncCompletionRegistration)
	s.log.Info("settings applied", zap.String("from", from), zap.String("url", ep.URL),
		zap.String("backend", string(ep.Backend)), zap.String("model", ep.Model),
		zap.String("token", stream.MaskToken(ep.Token)))
}

// newClient builds the endpoint client for cfg; the token comes from the
// settings, else from huggingface_hub's usual places.
func (s *server) newClient(cfg *config) (*stream.Client, error) {
	e := cfg.settings.Endpoint
	token, _ := stream.ResolveToken(e.Token, s.getenv)
	if cfg.noToken {
		token = ""
	}
	idle := time.Duration(0)
	if cfg.settings.IdleTimeoutSeconds != nil {
		idle = time.Duration(*cfg.settings.IdleTimeoutSeconds * float64(time.Second))
	}
	discovery, err := s.discovery(e.URL)
	if err != nil {
		return nil, err
	}
	return stream.NewClient(stream.Config{
		Endpoint:    stream.Endpoint{URL: e.URL, Backend: stream.Backend(e.Backend), Model: e.Model, Token: token},
		HTTPClient:  s.http,
		Logger:      s.log.Named("stream"),
		IdleTimeout: idle,
		Discovery:   discovery,
	})
}

// current returns the settings and client in force, creating the client for
// the defaults on first use.
func (s *server) current() (*config, *stream.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		c, err := s.newClient(s.cfg)
		if err != nil {
			return nil, nil, err
		}
		s.client = c
	}
	return s.cfg, s.client, nil
}

// pullConfiguration asks the client for the "genls" section. A null answer
// keeps the current settings.
func (s *server) pullConfiguration() {
	s.mu.Lock()
	supported := s.caps.configuration
	s.mu.Unlock()
	if !supported {
		return
	}
	var result []protocol.LSPAny
	params := &protocol.ConfigurationParams{Items: []protocol.ConfigurationItem{{Section: new("genls")}}}
	if _, err := s.conn.Call(s.ctx, "workspace/configuration", params, &result); err != nil {
		s.log.Debug("workspace/configuration failed", zap.Error(err))
		return
	}
	if len(result) == 0 || isNull(result[0]) {
		return
	}
	s.applySettings(json.RawMessage(result[0]), "workspace/configuration")
}

func (s *server) didChangeConfiguration(params json.RawMessage) error {
	var p protocol.DidChangeConfigurationParams
	if err := protocol.Unmarshal(params, &p); err != nil {
		return err
	}
	if isNull(p.Settings) || string(p.Settings) == "{}" {
		// The pull model: the client says "something changed", ask it.
		go s.pullConfiguration()
		return nil
	}
	s.applySettings(json.RawMessage(p.Settings), "didChangeConfiguration")
	return nil
}

func isNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}
