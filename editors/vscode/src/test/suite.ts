// End-to-end tests that run inside a real VS Code extension host (code-server),
// loaded as extensionTestsPath by e2e/run.mjs. They drive the real genls binary
// against fake endpoints started by vscode_test.go, whose URLs and scripted
// texts arrive in the environment:
//
//   GENLS_TEST_GENERATE_URL, GENLS_TEST_GENERATE_TEXT   a finished TGI stream
//   GENLS_TEST_CANCEL_URL, GENLS_TEST_CANCEL_TEXT       a stream that hangs after TEXT
//   GENLS_TEST_UNAUTHORIZED_URL                         a 401 answer
//   GENLS_TEST_UNDO_URL, GENLS_TEST_UNDO_TEXT, GENLS_TEST_UNDO_TOKENS
//                     a finished TGI stream of many small tokens, a few ms apart
//   GENLS_TEST_WORKSPACE_URL   the genls.endpoint.url of the workspace's
//                     .vscode/settings.json, which must never be used
//   GENLS_TEST_EOL    JSON: per line-break case, {url, text, tokens}: a finished
//                     TGI stream of `tokens` tokens and the exact text the
//                     document must gain, in the document's own EOL
//   GENLS_TEST_COMPLETION_URL, GENLS_TEST_COMPLETION_TEXT
//                     a TGI endpoint answering every request with TEXT, for
//                     inline completion (vscode_test.go checks which prompts
//                     reached it)
//   GENLS_TEST_COMPLETION_EOL
//                     JSON: per case, {url, text}: a TGI endpoint answering
//                     every request with a multi-line completion (its line
//                     breaks as the model writes them: "\n", "\r\n", ...) and
//                     the exact text a CRLF document must gain, in CRLF
//   GENLS_TEST_CHAT_URL, GENLS_TEST_CHAT_MODEL, GENLS_TEST_CHAT_TEXT
//                     an OpenAI-compatible chat endpoint serving MODEL (no
//                     fill-in-the-middle format), answering with TEXT
//
// run() resolves when every test passed; VS Code then reports exit code 0.
import * as assert from 'assert';
import * as fs from 'fs';
import * as vscode from 'vscode';
import { remember } from '../instructions';

type Test = { name: string; fn: () => Promise<void> };
const tests: Test[] = [];
const test = (name: string, fn: () => Promise<void>) => tests.push({ name, fn });

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`${name} is not set (run these tests through vscode_test.go)`);
  }
  return value;
}

// waitFor polls cond until it returns a value other than undefined/false.
async function waitFor<T>(what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v !== undefined && v !== false) {
        return v;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    }
    await sleep(100);
  }
}

async function codeActions(doc: vscode.TextDocument, range: vscode.Range): Promise<vscode.CodeAction[]> {
  return (await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', doc.uri, range)) ?? [];
}

// runAction executes the code action titled title, waiting for the server to offer it.
async function runAction(doc: vscode.TextDocument, range: vscode.Range, title: string): Promise<void> {
  const action = await waitFor(`code action "${title}"`, async () => (await codeActions(doc, range)).find(a => a.title === title));
  assert.ok(action.command, `code action "${title}" has no command`);
  await vscode.commands.executeCommand(action.command.command, ...(action.command.arguments ?? []));
}

// openFixture creates a fresh file in the workspace and shows it.
async function openFixture(name: string, text: string): Promise<vscode.TextEditor> {
  const uri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, name);
  await vscode.workspace.fs.writeFile(uri, Buffer.from(text));
  const doc = await vscode.workspace.openTextDocument(uri);
  return vscode.window.showTextDocument(doc);
}

function wholeDocument(doc: vscode.TextDocument): vscode.Range {
  return new vscode.Range(new vscode.Position(0, 0), doc.lineAt(doc.lineCount - 1).range.end);
}

// useEndpoint points genls at url and gives the extension time to push the
// change (workspace/didChangeConfiguration) before the next request.
async function useEndpoint(url: string): Promise<void> {
  await vscode.workspace.getConfiguration('genls').update('endpoint.url', url, vscode.ConfigurationTarget.Global);
  assert.strictEqual(vscode.workspace.getConfiguration('genls').get('endpoint.url'), url);
  await sleep(500);
}

// Error and information messages the extension shows (the server's
// window/showMessage, with buttons; the result of a generation).
const errorMessages: string[] = [];
const errorButtons = new Map<string, string[]>();
const infoMessages: string[] = [];
function captureMessages(): void {
  const showError = vscode.window.showErrorMessage;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (vscode.window as any).showErrorMessage = (message: string, ...rest: any[]) => {
    errorMessages.push(message);
    errorButtons.set(message, rest.filter(r => typeof r === 'string'));
    console.log(`# showErrorMessage: ${message} ${JSON.stringify(errorButtons.get(message))}`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (showError as any).call(vscode.window, message, ...rest);
  };
  const showInfo = vscode.window.showInformationMessage;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (vscode.window as any).showInformationMessage = (message: string, ...rest: any[]) => {
    infoMessages.push(message);
    console.log(`# showInformationMessage: ${message}`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (showInfo as any).call(vscode.window, message, ...rest);
  };
}

test('the extension activates and the server offers Generate', async () => {
  const ext = vscode.extensions.getExtension('genls.genls');
  assert.ok(ext, 'extension genls.genls not found');
  await ext.activate();
  const editor = await openFixture('ready.txt', 'ready\n');
  await runActionsReady(editor.document);
});

async function runActionsReady(doc: vscode.TextDocument): Promise<void> {
  const titles = await waitFor('the server to answer code actions', async () => {
    const t = (await codeActions(doc, wholeDocument(doc))).map(a => a.title);
    return t.includes('Generate') ? t : undefined;
  }, 30000);
  console.log(`# code actions on a selection: ${JSON.stringify(titles)}`);
  const empty = (await codeActions(doc, new vscode.Range(0, 0, 0, 0))).map(a => a.title);
  console.log(`# code actions at the cursor: ${JSON.stringify(empty)}`);
  assert.ok(empty.includes('Generate here'), `no "Generate here" on an empty range: ${JSON.stringify(empty)}`);
}

test('Generate streams the endpoint text into the document', async () => {
  // No useEndpoint: the URL in the User settings file (e2e/run.mjs) is the
  // one in use, not the one in the workspace's .vscode/settings.json.
  const url = vscode.workspace.getConfiguration('genls').inspect<string>('endpoint.url');
  assert.strictEqual(url?.globalValue, env('GENLS_TEST_GENERATE_URL'), 'genls.endpoint.url in the User settings');
  assert.strictEqual(url?.workspaceValue, undefined, 'a workspace set genls.endpoint.url');
  assert.strictEqual(vscode.workspace.getConfiguration('genls').get('endpoint.url'), env('GENLS_TEST_GENERATE_URL'));
  const original = 'package main\n\n// add returns the sum of a and b.\nfunc add(a, b int) int {\n';
  const editor = await openFixture('add.go', original);
  const doc = editor.document;
  const range = wholeDocument(doc);
  editor.selection = new vscode.Selection(range.start, range.end);
  const infos = infoMessages.length;
  await runAction(doc, range, 'Generate');
  const expected = original + env('GENLS_TEST_GENERATE_TEXT');
  await waitFor('the generated text', () => doc.getText() === expected, 20000).catch(err => {
    throw new Error(`${err.message}\ngot      ${JSON.stringify(doc.getText())}\nexpected ${JSON.stringify(expected)}`);
  });
  // Nothing more arrives after the stream's end.
  await sleep(500);
  assert.strictEqual(doc.getText(), expected);
  await waitFor('the generation to end (no Cancel generation action)', async () =>
    !(await codeActions(doc, range)).some(a => a.title === 'Cancel generation'));
  const result = await waitFor('the result message', () => infoMessages.slice(infos).find(m => /tokens? in/.test(m)));
  assert.match(result, /^genls: 3 tokens in \d+\.\d s \([\d.]+ tokens\/s\), finish reason: length\.$/);
  // Generating from a selection leaves the cursor after the generated text,
  // not a selection over it that the next keystroke would replace.
  assert.ok(editor.selection.isEmpty, `the selection grew over the generated text: ${JSON.stringify(editor.selection)}`);
});

// generateMany runs Generate here from the undo endpoint (many small
// tokens) in a fresh file holding head + tail, at the end of head, and
// returns the editor, the document the generation should make and the
// number of changes the document went through. during, if given, runs once
// the first generated text has arrived.
async function generateMany(name: string, head: string, tail: string, during?: (editor: vscode.TextEditor) => Promise<void>): Promise<{ editor: vscode.TextEditor; expected: string; changes: number }> {
  await useEndpoint(env('GENLS_TEST_UNDO_URL'));
  const editor = await openFixture(name, head + tail);
  const doc = editor.document;
  let changes = 0;
  const listener = vscode.workspace.onDidChangeTextDocument(e => {
    if (e.document === doc && e.contentChanges.length > 0) {
      changes++;
    }
  });
  const expected = head + env('GENLS_TEST_UNDO_TEXT') + tail;
  try {
    const at = doc.positionAt(head.length);
    editor.selection = new vscode.Selection(at, at);
    await vscode.commands.executeCommand('genls.editor.generate');
    if (during) {
      await waitFor('the first generated text', () => doc.getText().length > head.length + tail.length);
      await during(editor);
    }
    await waitFor('the generated text', () => doc.getText().startsWith(expected), 20000)
      .catch(err => {
        throw new Error(`${err.message}\ngot ${JSON.stringify(doc.getText())}`);
      });
    await waitFor('the generation to end', async () =>
      !(await codeActions(doc, wholeDocument(doc))).some(a => a.title === 'Cancel generation'));
  } finally {
    listener.dispose();
  }
  return { editor, expected, changes };
}

test('one undo removes a whole generation and one redo restores it', async () => {
  const original = 'The list:\n';
  const { editor, expected, changes } = await generateMany('undo.txt', original, '');
  const doc = editor.document;
  assert.strictEqual(doc.getText(), expected);
  const tokens = Number(env('GENLS_TEST_UNDO_TOKENS'));
  console.log(`# ${tokens} tokens arrived in ${changes} changes`);
  // The UI run (e2e/run.mjs) checks one Ctrl+Z over 20 edits and more; here
  // the number depends on the machine's load.
  assert.ok(changes >= 5, `only ${changes} changes for ${tokens} tokens: too few to tell one undo step from many`);
  await vscode.commands.executeCommand('undo');
  await waitFor('one undo to remove the generation', () => doc.getText() === original, 3000).catch(err => {
    throw new Error(`${err.message}: after one undo the document is ${JSON.stringify(doc.getText())}`);
  });
  await vscode.commands.executeCommand('redo');
  await waitFor('one redo to restore the generation', () => doc.getText() === expected, 3000).catch(err => {
    throw new Error(`${err.message}: after one redo the document is ${JSON.stringify(doc.getText())}`);
  });
});

test('typing below a generation while it streams: every keystroke and token kept, undone apart', async () => {
  const head = 'Generated here:';
  const tail = '\nTyped below:\n';
  const typed = 'a note';
  const { editor, expected } = await generateMany('typing.txt', head, tail, async () => {
    // To the end of the document as the editor has it, which may be ahead
    // of this extension host's copy while genls's edits stream in.
    await vscode.commands.executeCommand('cursorBottom');
    // Each keystroke is a change genls did not make, racing its edits.
    for (const ch of typed) {
      await vscode.commands.executeCommand('type', { text: ch });
      await sleep(15);
    }
  });
  const doc = editor.document;
  assert.strictEqual(doc.getText(), expected + typed);
  // Undo takes the typing and the generation apart: every step removes
  // some of the one or some of the other, never both, and never leaves a
  // keystroke or a token out of place.
  const generated = expected.slice(head.length, expected.length - tail.length);
  const parts = (text: string) => {
    const at = text.indexOf(tail, head.length);
    const g = text.slice(head.length, at);
    const t = text.slice(at + tail.length);
    assert.ok(text.startsWith(head) && at >= 0 && generated.startsWith(g) && typed.startsWith(t), `the document is ${JSON.stringify(text)}`);
    return { g: g.length, t: t.length };
  };
  let last = parts(doc.getText());
  for (let step = 1; last.g > 0 || last.t > 0; step++) {
    assert.ok(step <= 30, `30 undo steps did not restore the original: ${JSON.stringify(doc.getText())}`);
    const before = doc.getText();
    await vscode.commands.executeCommand('undo');
    await waitFor(`undo step ${step}`, () => doc.getText() !== before, 3000);
    const now = parts(doc.getText());
    assert.ok((now.g < last.g) !== (now.t < last.t), `undo step ${step} took ${last.g - now.g} generated and ${last.t - now.t} typed characters at once`);
    last = now;
  }
});

test('Generate here continues at the cursor, with no result message when genls.showResult is off', async () => {
  await useEndpoint(env('GENLS_TEST_GENERATE_URL'));
  const config = () => vscode.workspace.getConfiguration('genls');
  await config().update('showResult', false, vscode.ConfigurationTarget.Global);
  try {
    const original = 'package main\n\n// sub returns a minus b.\nfunc sub(a, b int) int {\n';
    const editor = await openFixture('sub.go', original);
    const doc = editor.document;
    const end = wholeDocument(doc).end;
    editor.selection = new vscode.Selection(end, end);
    const infos = infoMessages.length;
    await runAction(doc, new vscode.Range(end, end), 'Generate here');
    const expected = original + env('GENLS_TEST_GENERATE_TEXT');
    await waitFor('the generated text', () => doc.getText() === expected).catch(err => {
      throw new Error(`${err.message}\ngot      ${JSON.stringify(doc.getText())}\nexpected ${JSON.stringify(expected)}`);
    });
    await waitFor('the generation to end', async () =>
      !(await codeActions(doc, wholeDocument(doc))).some(a => a.title === 'Cancel generation'));
    await sleep(300);
    assert.deepStrictEqual(infoMessages.slice(infos).filter(m => /tokens? in/.test(m)), [], 'a result message with genls.showResult off');
  } finally {
    await config().update('showResult', undefined, vscode.ConfigurationTarget.Global);
  }
});

test('with no endpoint and nothing found, the first Generate offers Open Settings and Set API Token', async () => {
  const config = () => vscode.workspace.getConfiguration('genls');
  const url = config().get<string>('endpoint.url');
  const backend = config().get<string>('endpoint.backend');
  await config().update('endpoint.url', undefined, vscode.ConfigurationTarget.Global);
  await config().update('endpoint.backend', 'auto', vscode.ConfigurationTarget.Global);
  await sleep(500);
  try {
    const original = 'hello\n';
    const editor = await openFixture('first-run.txt', original);
    editor.selection = new vscode.Selection(0, 0, 0, 5);
    const before = errorMessages.length;
    await vscode.commands.executeCommand('genls.editor.generate');
    const message = await waitFor('the no-endpoint message', () => errorMessages.slice(before).find(m => /no model server found on this machine/.test(m)));
    assert.deepStrictEqual(errorButtons.get(message), ['Open Settings', 'Set API Token', 'Show Log']);
    assert.strictEqual(editor.document.getText(), original);
  } finally {
    await config().update('endpoint.backend', backend, vscode.ConfigurationTarget.Global);
    await config().update('endpoint.url', url, vscode.ConfigurationTarget.Global);
  }
});

// The default keybindings of VS Code bound to the same keys as genls's, all
// of them where no text editor has focus (terminal, find widget, quick
// input, search view, chat): genls's require editorTextFocus and exclude
// findWidgetVisible and inChat. A new VS Code that binds one of these keys
// in the editor fails this test: choose again then.
const sharedKeys: Record<string, string[]> = {
  'ctrl+alt+g': ['workbench.action.terminal.sendSequence'],
  'ctrl+alt+enter': [
    'editor.action.replaceAll',
    'quickInput.accept',
    'search.action.replaceAll',
    'workbench.action.chat.openSessionInNewEditorGroup',
    'workbench.action.chat.runInTerminal',
    'workbench.action.chat.skipTool',
    'workbench.action.terminal.chat.insertCommand',
    'workbench.action.terminal.chat.insertFirstCommand',
  ],
  'ctrl+shift+alt+backspace': [],
  'ctrl+alt+r': ['workbench.action.terminal.runRecentCommand', 'workbench.action.terminal.sendSequence'],
};

test('the instruction history keeps the latest first, once each, within its bound', async () => {
  assert.deepStrictEqual(remember([], 'add memoization'), ['add memoization']);
  assert.deepStrictEqual(remember(['b', 'a'], 'c'), ['c', 'b', 'a']);
  assert.deepStrictEqual(remember(['b', 'a', 'c'], 'a'), ['a', 'b', 'c'], 'a repeated instruction moves to the front');
  assert.deepStrictEqual(remember(['b', 'a'], ''), ['b', 'a'], 'an empty instruction is not kept');
  assert.deepStrictEqual(remember(['b', 'a'], '  '), ['b', 'a'], 'a blank instruction is not kept');
  assert.deepStrictEqual(remember([' x '], 'x'), ['x', ' x '], 'instructions are kept as typed');
  assert.deepStrictEqual(remember(['c', 'b', 'a'], 'd', 3), ['d', 'c', 'b'], 'the oldest goes when full');
});

test('the keybindings share no key with VS Code\'s own in a text editor', async () => {
  await vscode.commands.executeCommand('workbench.action.openDefaultKeybindingsFile');
  const text = await waitFor('the default keybindings', () => {
    const doc = vscode.window.activeTextEditor?.document;
    return doc?.uri.path.endsWith('keybindings.json') && doc.getText().length > 1000 ? doc.getText() : undefined;
  });
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  const defaults = new Map<string, Set<string>>();
  for (const m of text.matchAll(/\{ "key": "([^"]+)",\s*"command": "([^"]+)"/g)) {
    if (m[2].startsWith('genls.')) {
      continue; // this extension's own, listed there too
    }
    defaults.set(m[1], (defaults.get(m[1]) ?? new Set()).add(m[2]));
  }
  assert.ok(defaults.size > 100, `read only ${defaults.size} default keys`);
  const ours = vscode.extensions.getExtension('genls.genls')!.packageJSON.contributes.keybindings as { key: string; command: string }[];
  for (const { key, command } of ours) {
    if (key === 'escape') {
      continue; // bound only while a generation runs in the focused editor
    }
    assert.ok(key in sharedKeys, `${command}'s key ${key} is not checked here`);
    assert.deepStrictEqual([...(defaults.get(key) ?? [])].sort(), sharedKeys[key], `VS Code's own bindings of ${key}`);
  }
});

// marks returns genls's diagnostics in doc (with code, if given): the marks
// over generated text.
function marks(doc: vscode.TextDocument, code?: string): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(doc.uri).filter(d =>
    d.source === 'genls' && (code === undefined || String(typeof d.code === 'object' ? d.code.value : d.code) === code));
}

// generatePending runs Generate on the whole of a fresh file holding
// original and waits until the generation is pending review.
async function generatePending(name: string, original: string, generated: string): Promise<vscode.TextEditor> {
  await useEndpoint(env('GENLS_TEST_GENERATE_URL'));
  const editor = await openFixture(name, original);
  const doc = editor.document;
  const range = wholeDocument(doc);
  editor.selection = new vscode.Selection(range.start, range.end);
  await vscode.commands.executeCommand('genls.editor.generate');
  await waitFor('the generated text', () => doc.getText() === original + generated).catch(err => {
    throw new Error(`${err.message}\ngot ${JSON.stringify(doc.getText())}`);
  });
  await waitFor('the pending mark', () => marks(doc, 'genls.pending').length === 1);
  const [mark] = marks(doc);
  assert.strictEqual(doc.getText(mark.range), generated, 'the mark covers the generated text');
  return editor;
}

test('Discard restores the document byte for byte, keeping an edit made above', async () => {
  const original = 'first line\r\nsecond line\r\n';
  const generated = env('GENLS_TEST_GENERATE_TEXT').replace(/\n/g, '\r\n');
  const editor = await generatePending('discard.txt', original, generated);
  const doc = editor.document;
  // The user adds a line above; the cursor goes back to the generation's end.
  editor.selection = new vscode.Selection(0, 0, 0, 0);
  await vscode.commands.executeCommand('type', { text: '// above\n' });
  const end = wholeDocument(doc).end;
  editor.selection = new vscode.Selection(end, end);
  await vscode.commands.executeCommand('genls.editor.discard');
  const want = '// above\r\n' + original;
  await waitFor('the discarded text gone', () => doc.getText() === want).catch(err => {
    throw new Error(`${err.message}\ngot ${JSON.stringify(doc.getText())}\nwant ${JSON.stringify(want)}`);
  });
  await waitFor('the marks cleared', () => marks(doc).length === 0);
  assert.ok(await doc.save(), 'saving failed');
  assert.strictEqual(Buffer.from(await vscode.workspace.fs.readFile(doc.uri)).toString('utf8'), want);
});

test('Accept keeps the text and clears the mark; Regenerate replaces the text once', async () => {
  const original = 'alpha\n';
  const generated = env('GENLS_TEST_GENERATE_TEXT');
  const editor = await generatePending('accept.txt', original, generated);
  const doc = editor.document;
  // Regenerate first removes the text: wait for that, then for the new text.
  let removed = false;
  const listener = vscode.workspace.onDidChangeTextDocument(e => {
    removed ||= e.document === doc && doc.getText() === original;
  });
  await vscode.commands.executeCommand('genls.editor.regenerate');
  await waitFor('a new pending generation', () =>
    removed && doc.getText() === original + generated && marks(doc, 'genls.pending').length === 1 && marks(doc).length === 1, 10000)
    .catch(err => {
      throw new Error(`${err.message}\ngot ${JSON.stringify(doc.getText())} with marks ${JSON.stringify(marks(doc).map(m => m.code))}`);
    })
    .finally(() => listener.dispose());
  await vscode.commands.executeCommand('genls.editor.accept');
  await waitFor('the mark cleared', () => marks(doc).length === 0);
  await sleep(300);
  assert.strictEqual(doc.getText(), original + generated);
});

test('Cancel generation stops a hanging stream and keeps the text so far', async () => {
  await useEndpoint(env('GENLS_TEST_CANCEL_URL'));
  const original = 'Once upon a time\n';
  const editor = await openFixture('story.txt', original);
  const doc = editor.document;
  const range = wholeDocument(doc);
  editor.selection = new vscode.Selection(range.start, range.end);
  await runAction(doc, range, 'Generate');
  const partial = original + env('GENLS_TEST_CANCEL_TEXT');
  await waitFor('the text streamed before the endpoint hangs', () => doc.getText() === partial).catch(err => {
    throw new Error(`${err.message}\ngot      ${JSON.stringify(doc.getText())}\nexpected ${JSON.stringify(partial)}`);
  });
  await runAction(doc, wholeDocument(doc), 'Cancel generation');
  await waitFor('the generation to stop (no Cancel generation action)', async () =>
    !(await codeActions(doc, wholeDocument(doc))).some(a => a.title === 'Cancel generation'));
  await sleep(500);
  assert.strictEqual(doc.getText(), partial, 'cancelling changed the document');
});

test('genls: Cancel Generation from the palette stops a generation', async () => {
  await useEndpoint(env('GENLS_TEST_CANCEL_URL'));
  const original = 'Twice upon a time\n';
  const editor = await openFixture('story2.txt', original);
  const doc = editor.document;
  const range = wholeDocument(doc);
  editor.selection = new vscode.Selection(range.start, range.end);
  // The palette command: the active editor's selection, no code action involved.
  await vscode.commands.executeCommand('genls.editor.generate');
  const partial = original + env('GENLS_TEST_CANCEL_TEXT');
  await waitFor('the text streamed before the endpoint hangs', () => doc.getText() === partial);
  await vscode.commands.executeCommand('genls.editor.cancel');
  await waitFor('the generation to stop (no Cancel generation action)', async () =>
    !(await codeActions(doc, wholeDocument(doc))).some(a => a.title === 'Cancel generation'));
  await sleep(500);
  assert.strictEqual(doc.getText(), partial);
});

test('a 401 from the endpoint shows an error message', async () => {
  await useEndpoint(env('GENLS_TEST_UNAUTHORIZED_URL'));
  const original = 'hello\n';
  const editor = await openFixture('unauthorized.txt', original);
  const doc = editor.document;
  const range = wholeDocument(doc);
  editor.selection = new vscode.Selection(range.start, range.end);
  const before = errorMessages.length;
  await runAction(doc, range, 'Generate');
  const message = await waitFor('an error message', () => errorMessages.slice(before).find(m => /rejected the token|none was sent|no token was sent/.test(m)));
  console.log(`# error shown: ${message}`);
  assert.deepStrictEqual(errorButtons.get(message), ['Set API Token', 'Show Log']);
  assert.strictEqual(doc.getText(), original, 'a rejected generation changed the document');
});

type EolCase = { url: string; text: string; tokens: number };

function eolCase(name: string): EolCase {
  const c = (JSON.parse(env('GENLS_TEST_EOL')) as Record<string, EolCase>)[name];
  assert.ok(c, `GENLS_TEST_EOL has no case ${name}`);
  return c;
}

// generateExactly runs Generate on the whole of a fresh file holding original
// (whose line breaks set the document's EOL) and checks that the document ends
// as original + c.text, nothing more, and is saved as exactly those bytes.
// A server that fails to recognise the echo of its own edits re-sends them
// and fills the document with copies: every change must leave the document a
// prefix of the expected text, and there may be at most two changes per token,
// so that such a server fails at its first stray edit instead of at a timeout.
async function generateExactly(name: string, original: string, eol: vscode.EndOfLine, c: EolCase): Promise<void> {
  await useEndpoint(c.url);
  const editor = await openFixture(name, original);
  const doc = editor.document;
  assert.strictEqual(doc.eol, eol, `${name} opened with the wrong EOL`);
  const expected = original + c.text;
  const maxChanges = 2 * c.tokens;
  let changes = 0;
  let broken: string | undefined;
  const listener = vscode.workspace.onDidChangeTextDocument(e => {
    if (e.document !== doc || e.contentChanges.length === 0 || broken) {
      return;
    }
    changes++;
    const text = doc.getText();
    if (!expected.startsWith(text)) {
      broken = `change ${changes} made the document ${JSON.stringify(text.slice(0, 2000))} (${text.length} characters), ` +
        `not a prefix of ${JSON.stringify(expected)}; it was ${JSON.stringify(e.contentChanges.map(ch => ch.text))}`;
    } else if (changes > maxChanges) {
      broken = `${changes} changes for a stream of ${c.tokens} tokens; the document is ${JSON.stringify(text)}`;
    }
  });
  // waitFor retries a condition that throws: check outside it.
  const check = () => {
    if (broken) {
      throw new Error(broken);
    }
  };
  try {
    const range = wholeDocument(doc);
    editor.selection = new vscode.Selection(range.start, range.end);
    await runAction(doc, range, 'Generate');
    await waitFor('the generated text', () => broken !== undefined || doc.getText() === expected).catch(err => {
      throw new Error(`${err.message}\ngot      ${JSON.stringify(doc.getText().slice(0, 2000))}\nexpected ${JSON.stringify(expected)}`);
    });
    check();
    await waitFor('the generation to end (no Cancel generation action)', async () =>
      broken !== undefined || !(await codeActions(doc, wholeDocument(doc))).some(a => a.title === 'Cancel generation'));
    check();
    // Nothing more arrives after the stream's end.
    await sleep(500);
    check();
    assert.strictEqual(doc.getText(), expected);
    console.log(`# ${name}: ${changes} changes for ${c.tokens} tokens`);
  } finally {
    listener.dispose();
    if (broken || doc.getText() !== expected) {
      // Stop a runaway so that it does not disturb the tests after this one.
      await vscode.commands.executeCommand('genls.editor.cancel');
    }
  }
  // The profile has files.autoSave off, so the file on disk is still the
  // fixture; what a user saves must be exactly the document, line breaks included.
  assert.ok(await doc.save(), `saving ${name} failed`);
  const disk = Buffer.from(await vscode.workspace.fs.readFile(doc.uri)).toString('utf8');
  assert.strictEqual(disk, expected, `${name} on disk after saving`);
}

test('Generate into a CRLF document writes CRLF line breaks once', async () => {
  await generateExactly('crlf.txt', 'alpha\r\nbeta\r\n', vscode.EndOfLine.CRLF, eolCase('crlf'));
});

test('Generate into an LF document turns CRLF tokens into LF once', async () => {
  await generateExactly('lf-crlf.txt', 'gamma\ndelta\n', vscode.EndOfLine.LF, eolCase('lf-crlf-tokens'));
});

test('Generate into an LF document joins a CR and an LF from separate tokens', async () => {
  await generateExactly('lf-split.txt', 'epsilon\nzeta\n', vscode.EndOfLine.LF, eolCase('lf-split-cr-lf'));
});

// suggestAt puts the cursor at the end of line `line`, asks for an inline
// suggestion (as typing does) and accepts whatever ghost text shows up within
// ms; it returns the line's text afterwards. With wait, it keeps asking until
// the line changes or ms pass; without, it asks once and waits ms.
async function suggestAt(editor: vscode.TextEditor, line: number, ms: number, wait: boolean): Promise<string> {
  const doc = editor.document;
  const before = doc.lineAt(line).text;
  const end = doc.lineAt(line).range.end;
  editor.selection = new vscode.Selection(end, end);
  const deadline = Date.now() + ms;
  do {
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await sleep(wait ? 700 : ms);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
    if (doc.lineAt(line).text !== before) {
      break;
    }
  } while (wait && Date.now() < deadline);
  return doc.lineAt(line).text;
}

test('inline completion: the toggle turns it off and on, a language setting turns it off for that language', async () => {
  await useEndpoint(env('GENLS_TEST_COMPLETION_URL'));
  const completion = env('GENLS_TEST_COMPLETION_TEXT');
  const config = () => vscode.workspace.getConfiguration('genls');
  const global = () => config().inspect<string>('completion.enabled')?.globalValue;
  // e2e/run.mjs turns it off in the User settings, so that typing in the
  // other tests asks the endpoints nothing.
  assert.strictEqual(global(), 'off', 'genls.completion.enabled in the User settings');
  // Every line ends where the endpoint's completion goes; vscode_test.go
  // looks for each line's text in the prompts the endpoint received.
  const lines = ['off_before = ', 'on_after_toggle = ', 'off_after_toggle = ', 'auto_plaintext = ', 'off_python = '];
  const py = await openFixture('complete.py', lines.slice(0, 3).concat(lines[4]).join('\n') + '\n');
  const txtUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, 'complete.txt');
  await vscode.workspace.fs.writeFile(txtUri, Buffer.from(lines[3] + '\n'));
  try {
    // Off: nothing is asked, nothing shows.
    assert.strictEqual(await suggestAt(py, 0, 2500, false), lines[0], 'a completion while genls.completion.enabled is "off"');
    // The toggle turns it on in the User settings: the completion shows
    // and Tab (commit) inserts it.
    await vscode.commands.executeCommand('genls.toggleCompletion');
    assert.strictEqual(global(), 'on', 'genls.completion.enabled after toggling it on');
    assert.strictEqual(await suggestAt(py, 1, 20000, true), lines[1] + completion, 'the completion after toggling it on');
    // And off again: at once, without waiting for the server to unregister.
    await vscode.commands.executeCommand('genls.toggleCompletion');
    assert.strictEqual(global(), 'off', 'genls.completion.enabled after toggling it off');
    assert.strictEqual(await suggestAt(py, 2, 2500, false), lines[2], 'a completion after toggling it off');
    // "auto" on a TGI endpoint: on, except for Python, turned off by a
    // language-specific setting the server never sees.
    await config().update('completion.enabled', undefined, vscode.ConfigurationTarget.Global);
    await vscode.workspace.getConfiguration('genls', py.document).update('completion.enabled', 'off', vscode.ConfigurationTarget.Global, true);
    const txt = await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(txtUri));
    assert.strictEqual(await suggestAt(txt, 0, 20000, true), lines[3] + completion, 'the completion with genls.completion.enabled "auto" on a TGI endpoint');
    const py2 = await vscode.window.showTextDocument(py.document);
    assert.strictEqual(await suggestAt(py2, 3, 2500, false), lines[4], 'a completion in Python with "[python]": {"genls.completion.enabled": "off"}');
  } finally {
    await vscode.workspace.getConfiguration('genls', py.document).update('completion.enabled', undefined, vscode.ConfigurationTarget.Global, true);
    await config().update('completion.enabled', 'off', vscode.ConfigurationTarget.Global);
  }
});

// The server answers inline completions with "\n" line breaks whatever the
// document's; accepted in a CRLF document, VS Code must insert each as
// "\r\n": no lone "\n", no "\r\r", in the document and in the file saved.
test('inline completion into a CRLF document inserts CRLF line breaks', async () => {
  const cases = JSON.parse(env('GENLS_TEST_COMPLETION_EOL')) as Record<string, { url: string; text: string }>;
  assert.ok(Object.keys(cases).length > 0, 'GENLS_TEST_COMPLETION_EOL has no cases');
  const config = () => vscode.workspace.getConfiguration('genls');
  await config().update('completion.enabled', 'on', vscode.ConfigurationTarget.Global);
  try {
    for (const [name, c] of Object.entries(cases)) {
      await useEndpoint(c.url);
      const file = `complete-crlf-${name}.py`;
      const before = 'def f(x):\r\n    ';
      const after = '\r\nprint(1)\r\n';
      const editor = await openFixture(file, before + after);
      const doc = editor.document;
      assert.strictEqual(doc.eol, vscode.EndOfLine.CRLF, `${file} opened with the wrong EOL`);
      const line = await suggestAt(editor, 1, 20000, true);
      assert.notStrictEqual(line, '    ', `${name}: no completion was shown and accepted in ${file}`);
      const expected = before + c.text + after;
      const text = doc.getText();
      assert.strictEqual(text, expected, `${name}: ${file} after accepting the completion`);
      assert.ok(!/(^|[^\r])\n/.test(text), `${name}: a lone "\\n" in ${JSON.stringify(text)}`);
      assert.ok(!text.includes('\r\r'), `${name}: "\\r\\r" in ${JSON.stringify(text)}`);
      assert.strictEqual(doc.eol, vscode.EndOfLine.CRLF, `${name}: ${file}'s EOL after accepting the completion`);
      assert.ok(await doc.save(), `saving ${file} failed`);
      const disk = Buffer.from(await vscode.workspace.fs.readFile(doc.uri)).toString('utf8');
      assert.strictEqual(disk, expected, `${name}: ${file} on disk after saving`);
      console.log(`# ${name}: ${JSON.stringify(text)}`);
    }
  } finally {
    await config().update('completion.enabled', 'off', vscode.ConfigurationTarget.Global);
  }
});

test('inline completion "on" asks a chat endpoint that "auto" leaves alone', async () => {
  const config = () => vscode.workspace.getConfiguration('genls');
  await config().update('endpoint.backend', 'openai', vscode.ConfigurationTarget.Global);
  await config().update('endpoint.model', env('GENLS_TEST_CHAT_MODEL'), vscode.ConfigurationTarget.Global);
  await useEndpoint(env('GENLS_TEST_CHAT_URL'));
  const editor = await openFixture('chat.py', 'chat_auto = \nchat_on = \n');
  try {
    await config().update('completion.enabled', undefined, vscode.ConfigurationTarget.Global);
    assert.strictEqual(await suggestAt(editor, 0, 2500, false), 'chat_auto = ', 'a completion from a chat model with genls.completion.enabled "auto"');
    // Off in the status bar's eyes, so the toggle turns it on.
    await vscode.commands.executeCommand('genls.toggleCompletion');
    assert.strictEqual(config().inspect<string>('completion.enabled')?.globalValue, 'on');
    assert.strictEqual(await suggestAt(editor, 1, 20000, true), 'chat_on = ' + env('GENLS_TEST_CHAT_TEXT'), 'the completion from a chat model with genls.completion.enabled "on"');
  } finally {
    await config().update('completion.enabled', 'off', vscode.ConfigurationTarget.Global);
    await config().update('endpoint.model', undefined, vscode.ConfigurationTarget.Global);
    await config().update('endpoint.backend', 'tgi', vscode.ConfigurationTarget.Global);
  }
});

// genlsChildren returns the pids of the genls processes this extension host
// started (Linux: read from /proc).
function genlsChildren(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'genls' && ppid === process.pid) {
        pids.push(Number(entry));
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

test('a server that crashes is restarted', async () => {
  const [pid] = await waitFor('the genls process', () => {
    const pids = genlsChildren();
    return pids.length === 1 ? pids : undefined;
  });
  process.kill(pid, 'SIGKILL');
  const [restarted] = await waitFor('a new genls process', () => {
    const pids = genlsChildren();
    return pids.length === 1 && pids[0] !== pid ? pids : undefined;
  });
  console.log(`# killed genls ${pid}; restarted as ${restarted}`);
  const editor = await openFixture('after-crash.txt', 'still here\n');
  await runActionsReady(editor.document);
});

test('a server that crashes while the extension writes to it is restarted', async () => {
  const [pid] = await waitFor('the genls process', () => {
    const pids = genlsChildren();
    return pids.length === 1 ? pids : undefined;
  });
  // Messages to a server that is gone: writing them fails (EPIPE), which
  // must not stop the client for good.
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 5; i++) {
    void Promise.resolve(vscode.commands.executeCommand('genls.cancel')).catch(() => undefined);
    await sleep(2);
  }
  const [restarted] = await waitFor('a new genls process', () => {
    const pids = genlsChildren();
    return pids.length === 1 && pids[0] !== pid ? pids : undefined;
  });
  console.log(`# killed genls ${pid} while writing to it; restarted as ${restarted}`);
  const editor = await openFixture('after-crash-writing.txt', 'still here\n');
  await runActionsReady(editor.document);
});

test('a missing server binary is reported with a pointer to the install docs', async () => {
  const config = () => vscode.workspace.getConfiguration('genls');
  const serverPath = config().get<string>('serverPath');
  const before = errorMessages.length;
  await config().update('serverPath', '/nonexistent/genls', vscode.ConfigurationTarget.Global);
  try {
    const message = await waitFor('the not-found message', () => errorMessages.slice(before).find(m => /binary was not found/.test(m)));
    console.log(`# error shown: ${message}`);
    assert.match(message, /\/nonexistent\/genls/);
    assert.ok(errorButtons.get(message)?.includes('Install instructions'), `no "Install instructions" button: ${errorButtons.get(message)}`);
  } finally {
    await config().update('serverPath', serverPath, vscode.ConfigurationTarget.Global);
  }
  const editor = await openFixture('after-missing.txt', 'back again\n');
  await runActionsReady(editor.document);
});

export async function run(): Promise<void> {
  captureMessages();
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of tests) {
    const start = Date.now();
    try {
      await fn();
      passed++;
      console.log(`ok - ${name} (${Date.now() - start} ms)`);
    } catch (err) {
      failed++;
      console.log(`not ok - ${name} (${Date.now() - start} ms): ${err instanceof Error ? err.stack ?? err.message : err}`);
      if (name === tests[0].name) {
        console.log('# the server never became ready: skipping the other tests');
        break;
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  if (failed > 0) {
    throw new Error(`${failed} test(s) failed`);
  }
}
