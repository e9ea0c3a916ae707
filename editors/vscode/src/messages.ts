// What the user can do about a message from the server. The server words
// its errors for people (stream/errors.go, stream/discover.go, lsp/settings.go);
// this maps the stable parts of those texts to the action that fixes each.
// No vscode import: messages_test.go runs it under plain Node against the
// server's real texts, so that a reworded error fails a test here instead
// of silently losing its button.

export type Fix = 'Open Settings' | 'Set API Token' | 'Retry' | 'Show Log';

// The kinds of servers stream.NoEndpointError names.
const noServer = String.raw`\bno (?:model|TGI|Ollama|OpenAI-compatible) server found on this machine\b`;

// The first rule that matches decides; every error also gets Show Log.
const rules: { pattern: RegExp; fixes: Fix[] }[] = [
  // Nothing configured, nothing found, and no token for Hugging Face's
  // router: either fix works.
  { pattern: new RegExp(`${noServer}.*\\bno Hugging Face token\\b`), fixes: ['Open Settings', 'Set API Token'] },
  // Nothing found and a backend the router does not speak: only a URL helps.
  { pattern: new RegExp(noServer), fixes: ['Open Settings'] },
  // A 401 or 403: no token was sent, or the token was rejected.
  { pattern: /\bno token was sent\b|\bnone was sent\b|\brejected the token\b/, fixes: ['Set API Token'] },
  // The URL is wrong or nothing listens there.
  { pattern: /\bcannot reach\b|\bcould not detect the endpoint's backend\b|\banswered 404\b|\binvalid setting\b|\bunknown setting\b/, fixes: ['Open Settings'] },
  // Worth trying again later: a model that stayed loading past the
  // server's own retries, an overloaded or rate-limited endpoint, a stall.
  { pattern: /\bstill loading\b|\boverloaded\b|\brate-limited\b|\bsent nothing for\b/, fixes: ['Retry'] },
];

// fixesFor returns the buttons to offer with message, most useful first.
export function fixesFor(message: string): Fix[] {
  const rule = rules.find(r => r.pattern.test(message));
  return [...(rule?.fixes ?? []), 'Show Log'];
}
