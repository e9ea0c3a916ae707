package lsp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"text/template"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// action is a named action from the settings: a code action with its own
// mode, prompt, instruction, parameters and, optionally, endpoint.
type action struct {
	title       string
	mode        commands.Mode
	template    *template.Template // nil: the global prompt.template
	system      *string            // nil: the global prompt.system
	instruction string
	params      stream.Parameters
	// endpoint overrides the global endpoint's fields when set.
	endpoint  *endpointSettings
	languages []string
	// client is the action's own endpoint client, when it has an
	// endpoint; set when the settings are applied.
	client *stream.Client
}

// actionSettings is one entry of the actions setting.
type actionSettings struct {
	Title       string            `json:"title"`
	Mode        string            `json:"mode"`
	Template    string            `json:"template"`
	System      *string           `json:"system"`
	Instruction string            `json:"instruction"`
	Parameters  json.RawMessage   `json:"parameters"`
	Endpoint    *endpointSettings `json:"endpoint"`
	Languages   []string          `json:"languages"`
}

// defaultActions are offered when the settings name no actions: worded for
// any language, and easy to copy into the settings to change or remove.
var defaultActions = []actionSettings{
	{Title: "Add documentation comment", Mode: "rewrite",
		Instruction: "Add a documentation comment to this code, in the usual style of its language. Change nothing else."},
	{Title: "Fix bugs", Mode: "rewrite",
		Instruction: "Fix the bugs in this code, changing as little as possible. Keep everything that is correct as it is."},
	{Title: "Write tests", Mode: "insert",
		Instruction: "Write unit tests for the following code, in the same language, with its usual test framework. Reply with the test code only."},
}

// parseActions checks each entry of s's actions on its own: a bad one is
// dropped and reported by its index and title; the rest stand.
func parseActions(s settings) ([]*action, []error) {
	entries := defaultActions
	if s.Actions != nil {
		entries = make([]actionSettings, len(*s.Actions))
	}
	var out []*action
	var problems []error
	for i := range entries {
		var err error
		if s.Actions != nil {
			err = json.Unmarshal((*s.Actions)[i], &entries[i])
		}
		e := entries[i]
		var a *action
		if err == nil {
			a, err = e.validate(s)
		}
		if err == nil && slices.ContainsFunc(out, func(o *action) bool { return o.title == a.title }) {
			err = errors.New("another action has this title")
		}
		if err != nil {
			key := fmt.Sprintf("actions[%d]", i)
			if e.Title != "" {
				key = fmt.Sprintf("actions[%d] (%q)", i, e.Title)
			}
			problems = append(problems, fmt.Errorf("invalid setting %s: %w; that action is left out, the others work", key, err))
			continue
		}
		out = append(out, a)
	}
	return out, problems
}

// validate turns an entry into an action, its parameters over the global
// ones.
func (e actionSettings) validate(s settings) (*action, error) {
	if e.Title == "" {
		return nil, errors.New("title is required")
	}
	mode, err := commands.ParseMode(e.Mode)
	if err != nil {
		return nil, err
	}
	tmpl, err := commands.ParseTemplate(e.Template)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	p := s.Parameters
	if len(e.Parameters) > 0 {
		if err := json.Unmarshal(e.Parameters, &p); err != nil {
			return nil, fmt.Errorf("parameters: %w", err)
		}
	}
	params, err := p.parameters()
	if err != nil {
		return nil, err
	}
	a := &action{title: e.Title, mode: mode, template: tmpl, system: e.System, instruction: e.Instruction,
		params: params, languages: e.Languages}
	if e.Endpoint != nil {
		ep := s.Endpoint
		if e.Endpoint.URL != "" {
			// Another server: nothing of the global endpoint carries over
			// but what the action names.
			ep = endpointSettings{URL: e.Endpoint.URL, Backend: "auto"}
		}
		if e.Endpoint.Backend != "" {
			ep.Backend = e.Endpoint.Backend
		}
		if e.Endpoint.Model != "" {
			ep.Model = e.Endpoint.Model
		}
		if e.Endpoint.Token != "" {
			ep.Token = e.Endpoint.Token
		}
		if _, err := stream.ParseBackend(ep.Backend); err != nil {
			return nil, fmt.Errorf("endpoint.backend: %w", err)
		}
		if ep.URL != "" {
			if err := stream.CheckURL(ep.URL); err != nil {
				return nil, fmt.Errorf("endpoint.url: %w", err)
			}
		}
		a.endpoint = &ep
	}
	return a, nil
}

// offered reports whether a is offered for a document in languageID.
func (a *action) offered(languageID string) bool {
	return len(a.languages) == 0 || slices.Contains(a.languages, languageID)
}

// actionNamed returns cfg's action titled title.
func (c *config) actionNamed(title string) (*action, bool) {
	for _, a := range c.actions {
		if a.title == title {
			return a, true
		}
	}
	return nil, false
}
