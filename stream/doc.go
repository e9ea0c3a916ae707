// Package stream talks to generation endpoints: it builds requests for TGI,
// OpenAI-compatible servers and Ollama, decodes their server-sent events
// and NDJSON, and runs every token through the pipeline that keeps genls's
// promises about text (no special tokens, stops even split across tokens,
// valid UTF-8, a token limit). Errors are typed and say what to do; the API
// token is found here and sent only to the configured endpoint. With none
// configured, it chooses one (discover.go): a model server on this machine,
// else Hugging Face's router, the only place the token then goes.
//
// It knows nothing of editors or LSP: commands runs a generation from it,
// and lsp and the genls command configure it.
package stream
