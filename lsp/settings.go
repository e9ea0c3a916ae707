package lsp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/template"
	"unicode"

	"github.com/genls/genls/commands"
	"github.com/genls/genls/stream"
)

// settings is genls's configuration: one JSON object, the same in
// initializationOptions, workspace/configuration (section "genls") and
// workspace/didChangeConfiguration.
type settings struct {
	Endpoint   endpointSettings  `json:"endpoint"`
	Parameters parameterSettings `json:"parameters"`
	Prompt     struct {
		Template string  `json:"template"`
		System   *string `json:"system"`
		FIM      struct {
			// Preset names a model family's tokens (commands.FIMPresets);
			// absent, inline completion recognises the family from the
			// model's name.
			Preset string `json:"preset"`
			Prefix string `json:"prefix"`
			Suffix string `json:"suffix"`
			Middle string `json:"middle"`
		} `json:"fim"`
	} `json:"prompt"`
	Log struct {
		Level string `json:"level"`
		File  string `json:"file"`
	} `json:"log"`
	// IdleTimeoutSeconds ends a stream that sends nothing for this long.
	IdleTimeoutSeconds *float64 `json:"idle_timeout_seconds"`
	Context            struct {
		// MaxInputTokens caps a prompt's tokens, below what the endpoint
		// publishes (0: only what it publishes, or the default).
		MaxInputTokens int `json:"max_input_tokens"`
	} `json:"context"`
	Completion completionSettings `json:"completion"`
	// Review keeps a generation pending, marked, until it is accepted or
	// discarded (default true); false accepts it when it ends.
	Review *bool `json:"review"`
	// Actions are the named actions offered as code actions; absent means
	// the defaults (defaultActions), [] none. Each entry is checked on its
	// own, so a bad one is reported and the rest work.
	Actions *[]json.RawMessage `json:"actions"`
}

// completionSettings configures inline completion (inline_completion.go).
type completionSettings struct {
	// Enabled: absent means on when the endpoint can complete code (see
	// completionWanted).
	Enabled      *bool `json:"enabled"`
	MaxLines     *int  `json:"max_lines"`
	MaxNewTokens *int  `json:"max_new_tokens"`
	// DebounceMS delays automatic requests; absent means what suits the
	// client (debounceFor).
	DebounceMS *int `json:"debounce_ms"`
}

type endpointSettings struct {
	URL     string `json:"url"`
	Backend string `json:"backend"`
	Model   string `json:"model"`
	Token   string `json:"token"`
}

type parameterSettings struct {
	stream.Parameters
	// MaxNewTokens shadows the embedded field so that an explicit 0 is
	// reported instead of meaning "the default".
	MaxNewTokens *int `json:"max_new_tokens"`
}

// parameters validates p.
func (p parameterSettings) parameters() (stream.Parameters, error) {
	params := p.Parameters
	params.MaxNewTokens = 0
	if p.MaxNewTokens != nil {
		if *p.MaxNewTokens <= 0 {
			return params, &settingError{Key: "parameters.max_new_tokens", Err: fmt.Errorf("must be positive, got %d", *p.MaxNewTokens)}
		}
		params.MaxNewTokens = *p.MaxNewTokens
	}
	if err := params.Validate(); err != nil {
		return params, &settingError{Key: "parameters", Err: err}
	}
	return params, nil
}

// config is validated settings, ready to use.
type config struct {
	settings settings
	params   stream.Parameters
	template *template.Template
	fim      commands.FIM
	// system is prompt.system; nil means each mode's default.
	system  *string
	review  bool
	actions []*action
	// problems are the bad action entries, dropped and reported.
	problems []error
	// noToken keeps the token from the endpoint (an action's endpoint on
	// another host).
	noToken bool
	// preset is the prompt.fim.preset named, if any; fim holds its tokens
	// unless explicit ones are set.
	preset     *commands.FIMPreset
	completion completionConfig
}

// systemFor returns the system prompt for a generation in mode.
func (c *config) systemFor(mode commands.Mode) string {
	switch {
	case c.system != nil:
		return *c.system
	case mode == commands.ModeRewrite:
		return commands.DefaultRewriteSystemPrompt
	}
	return commands.DefaultSystemPrompt
}

// settingError names the setting that is wrong.
type settingError struct {
	Key string
	Err error
}

func (e *settingError) Error() string {
	return fmt.Sprintf("invalid setting %s: %v; keeping the previous settings", e.Key, e.Err)
}

// parseSettings decodes and validates raw settings. raw may be the settings
// object itself or wrapped as {"genls": {...}}. null or empty means defaults.
func parseSettings(raw json.RawMessage) (*config, error) {
	raw = emptyTablesAsObjects(bytes.TrimSpace(raw))
	var s settings
	if len(raw) > 0 && string(raw) != "null" {
		var wrapped map[string]json.RawMessage
		if json.Unmarshal(raw, &wrapped) == nil {
			if inner, ok := wrapped["genls"]; ok {
				raw = inner
			}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&s); err != nil && string(raw) != "null" {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, &settingError{Key: settingKey(te.Field), Err: fmt.Errorf("want %s, got %s", te.Type, te.Value)}
			}
			return nil, &settingError{Key: "genls", Err: err}
		}
	}
	return validate(s)
}

func validate(s settings) (*config, error) {
	if _, err := stream.ParseBackend(s.Endpoint.Backend); err != nil {
		return nil, &settingError{Key: "endpoint.backend", Err: err}
	}
	if s.Endpoint.URL != "" {
		if err := stream.CheckURL(s.Endpoint.URL); err != nil {
			return nil, &settingError{Key: "endpoint.url", Err: err}
		}
	}
	params, err := s.Parameters.parameters()
	if err != nil {
		return nil, err
	}
	tmpl, err := commands.ParseTemplate(s.Prompt.Template)
	if err != nil {
		return nil, &settingError{Key: "prompt.template", Err: err}
	}
	fim := commands.FIM{Prefix: s.Prompt.FIM.Prefix, Suffix: s.Prompt.FIM.Suffix, Middle: s.Prompt.FIM.Middle}
	if (fim.Prefix != "" || fim.Suffix != "" || fim.Middle != "") && !fim.Enabled() {
		return nil, &settingError{Key: "prompt.fim", Err: errors.New("set all of prefix, suffix and middle, or none")}
	}
	var preset *commands.FIMPreset
	if name := s.Prompt.FIM.Preset; name != "" {
		p, ok := commands.FIMPresetNamed(name)
		if !ok {
			var names []string
			for _, p := range commands.FIMPresets() {
				names = append(names, p.Name)
			}
			return nil, &settingError{Key: "prompt.fim.preset", Err: fmt.Errorf("%q is not one of %s", name, strings.Join(names, ", "))}
		}
		preset = &p
		if !fim.Enabled() {
			fim = p.FIM
		}
	}
	completion, err := s.Completion.config()
	if err != nil {
		return nil, err
	}
	if s.IdleTimeoutSeconds != nil && *s.IdleTimeoutSeconds <= 0 {
		return nil, &settingError{Key: "idle_timeout_seconds", Err: errors.New("must be positive")}
	}
	switch s.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return nil, &settingError{Key: "log.level", Err: fmt.Errorf("%q is not one of debug, info, warn, error", s.Log.Level)}
	}
	if s.Context.MaxInputTokens < 0 {
		return nil, &settingError{Key: "context.max_input_tokens", Err: errors.New("must not be negative")}
	}
	review := s.Review == nil || *s.Review
	cfg := &config{settings: s, params: params, template: tmpl, fim: fim, system: s.Prompt.System, review: review,
		preset: preset, completion: completion}
	cfg.actions, cfg.problems = parseActions(s)
	return cfg, nil
}

// emptyTablesAsObjects rewrites the empty arrays of raw that stand where
// settings has an object as {}: Lua-configured clients (Neovim, and any
// client whose config language cannot tell an empty table from an empty
// list) send `init_options = {}` as [], and `endpoint = {}` as
// "endpoint": []. raw is returned unchanged when it has none.
func emptyTablesAsObjects(raw json.RawMessage) json.RawMessage {
	if !bytes.Contains(raw, []byte("[")) {
		return raw
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw // reported by the decoder
	}
	if obj, ok := v.(map[string]any); ok && len(obj) == 1 && obj["genls"] != nil {
		obj["genls"] = objectsFor(obj["genls"], reflect.TypeFor[settings]())
	} else {
		v = objectsFor(v, reflect.TypeFor[settings]())
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// objectsFor returns v with every empty array where typ (or a field of it)
// is a struct replaced by an empty object.
func objectsFor(v any, typ reflect.Type) any {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		return v
	}
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			return map[string]any{}
		}
	case map[string]any:
		for _, f := range jsonFields(typ) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if sub, ok := v[name]; ok {
				v[name] = objectsFor(sub, f.Type)
			}
		}
	}
	return v
}

// unknownKeys lists the keys of raw (dotted paths) that no field of settings
// reads, so a typo such as "max_new_token" is reported instead of silently
// ignored.
func unknownKeys(raw json.RawMessage) []string {
	raw = emptyTablesAsObjects(raw)
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	if inner, ok := obj["genls"].(map[string]any); ok && len(obj) == 1 {
		obj = inner
	}
	var out []string
	walkUnknown("", obj, reflect.TypeFor[settings](), &out)
	sort.Strings(out)
	return out
}

func walkUnknown(prefix string, obj map[string]any, typ reflect.Type, out *[]string) {
	fields := map[string]reflect.Type{}
	for _, f := range jsonFields(typ) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = f.Type
	}
	for key, val := range obj {
		ft, ok := fields[key]
		if !ok {
			*out = append(*out, prefix+key)
			continue
		}
		if sub, isObj := val.(map[string]any); isObj && ft.Kind() == reflect.Struct {
			walkUnknown(prefix+key+".", sub, ft, out)
		}
	}
}

// settingKey turns encoding/json's path to a field into the setting's
// name: it leaves out embedded structs, whose Go names encoding/json
// includes ("parameters.Parameters.top_p"); settings keys are lower case.
func settingKey(field string) string {
	parts := strings.Split(field, ".")
	parts = slices.DeleteFunc(parts, func(p string) bool { return p != "" && unicode.IsUpper(rune(p[0])) })
	return strings.Join(parts, ".")
}

// jsonFields returns the fields of struct type typ as encoding/json sees
// them: the fields of an untagged embedded struct are promoted, and a
// field of the outer struct wins over a promoted one of the same name.
func jsonFields(typ reflect.Type) []reflect.StructField {
	var own, promoted []reflect.StructField
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			promoted = append(promoted, jsonFields(f.Type)...)
			continue
		}
		own = append(own, f)
	}
	for _, f := range promoted {
		if !slices.ContainsFunc(own, func(o reflect.StructField) bool { return o.Tag.Get("json") == f.Tag.Get("json") }) {
			own = append(own, f)
		}
	}
	return own
}

// CheckSettings reports whether raw is a settings object genls accepts in
// full: every key known, every value valid. Editor recipes' tests use it to
// check their snippets against the server itself.
func CheckSettings(raw json.RawMessage) error {
	if keys := unknownKeys(raw); len(keys) > 0 {
		return &settingError{Key: strings.Join(keys, ", "), Err: errors.New("genls has no such setting")}
	}
	_, err := parseSettings(raw)
	return err
}
