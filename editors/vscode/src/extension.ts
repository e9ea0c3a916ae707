// The genls extension: starts the genls language server over stdio and lets
// vscode-languageclient do the rest. Code actions, code lenses, the marks on
// generated text and the server's commands (genls.generate, genls.accept, …)
// come from the server; this file adds the settings plumbing, the API token
// in SecretStorage, commands for the keybindings, the instruction box of
// Generate… and Rewrite… (instructions.ts), one undo step per
// generation (edits.ts), the progress notification and context keys
// (generations.ts), buttons that fix what the server's errors report
// (messages.ts), and the inline completion setting, status-bar toggle and
// middleware check (completion.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import type { Readable } from 'stream';
import * as vscode from 'vscode';
import {
  CancellationToken,
  CloseAction,
  CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  ErrorHandler,
  ErrorHandlerResult,
  InlineCompletionRequest,
  LanguageClient,
  LanguageClientOptions,
  Message,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  ShowMessageParams,
  State,
  TransportKind,
} from 'vscode-languageclient/node';
import { CompletionStatus, completionAllowed, serverCompletionEnabled, toggleCompletion } from './completion';
import { GenerationEdits } from './edits';
import { Generations } from './generations';
import { InstructionHistory, ask } from './instructions';
import { Fix, fixesFor } from './messages';

const installDocs = 'https://github.com/genls/genls#install';
const tokenKey = 'genls.endpoint.token';

// A crashed server is restarted at most this many times within restartWindowMs;
// after that it stays down until "genls: Restart Server".
const maxRestarts = 4;
const restartWindowMs = 3 * 60 * 1000;

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('genls', { log: true });
  session = new Session(context, output);
  context.subscriptions.push(
    output,
    session,
    vscode.commands.registerCommand('genls.editor.generate', () => session?.generate()),
    vscode.commands.registerCommand('genls.editor.generateWithInstruction', () => session?.generateWithInstruction()),
    vscode.commands.registerCommand('genls.editor.rewrite', () => session?.rewrite()),
    vscode.commands.registerCommand('genls.editor.cancel', () => session?.cancel()),
    vscode.commands.registerCommand('genls.editor.accept', () => session?.review('genls.accept')),
    vscode.commands.registerCommand('genls.editor.discard', () => session?.review('genls.discard')),
    vscode.commands.registerCommand('genls.editor.regenerate', () => session?.review('genls.regenerate')),
    vscode.commands.registerCommand('genls.showLog', () => output.show(true)),
    vscode.commands.registerCommand('genls.setToken', () => session?.setToken()),
    vscode.commands.registerCommand('genls.restartServer', () => session?.restart()),
    vscode.commands.registerCommand('genls.toggleCompletion', () => session?.toggleCompletion()),
    vscode.workspace.onDidChangeConfiguration(e => session?.configurationChanged(e)),
    context.secrets.onDidChange(e => {
      if (e.key === tokenKey) {
        void session?.tokenChanged();
      }
    }),
  );
  await session.start();
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}

// The commands genls runs on pending generations (the server's contract).
type ReviewCommand = 'genls.accept' | 'genls.discard' | 'genls.regenerate';

// Session owns the language client for the extension's lifetime, across restarts.
class Session implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  // The API token, read from SecretStorage at start and on every change.
  private token: string | undefined;
  private readonly edits = new GenerationEdits(() => this.client);
  private readonly generations = new Generations(() => this.client, (uri, end) => this.generationEnded(uri, end));
  // The arguments of the last genls.generate, for the Retry button.
  private lastGenerate: unknown[] | undefined;
  private readonly instructions: InstructionHistory;
  // The status-bar item showing whether inline completion is on.
  private readonly completionStatus = new CompletionStatus(() => this.completionRegistered());

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.instructions = new InstructionHistory(context.globalState);
  }

  dispose(): void {
    this.generations.dispose();
    this.completionStatus.dispose();
  }

  start(): Promise<void> {
    this.starting ??= this.startClient().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async startClient(): Promise<void> {
    this.token = await this.context.secrets.get(tokenKey);
    const command = resolveServerPath(this.context);
    if (!command || !fs.existsSync(command)) {
      const why = command
        ? `genls.serverPath is ${command}, which does not exist`
        : 'genls.serverPath is empty, none is bundled and genls is not on PATH';
      this.output.error(`server binary not found: ${why}`);
      // Not awaited: activation must not wait for the user to answer.
      void vscode.window.showErrorMessage(
        `genls: the language server binary was not found (${why}). Install genls and put it on PATH, or set "genls.serverPath".`,
        'Install instructions',
        'Open Settings',
      ).then(choice => {
        if (choice === 'Install instructions') {
          void vscode.env.openExternal(vscode.Uri.parse(installDocs));
        } else if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'genls.serverPath');
        }
      });
      return;
    }
    const level = vscode.workspace.getConfiguration('genls').get<string>('log.level') || 'info';
    // The token reaches the server only through its environment (genls
    // reads HF_TOKEN), never through JSON-RPC, where a protocol trace or a
    // log of the settings would show it.
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (this.token) {
      env.HF_TOKEN = this.token;
    }
    const serverOptions: ServerOptions = {
      command,
      args: ['--stdio', '--log-level', level],
      transport: TransportKind.stdio,
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      // The server's stderr is its log, already timestamped and levelled:
      // show its lines as they are rather than as errors.
      stdioOptions: { stdout: copyLines, stderr: copyLines },
      // A function, so that a restart after a crash sends the current settings.
      initializationOptions: () => this.settings(),
      errorHandler: new RestartLimiter(this.output),
      middleware: {
        executeCommand: (command, args, next) => this.executeCommand(command, args, next),
        handleWorkDoneProgress: (token, params, next) => this.generations.handleWorkDoneProgress(token, params, () => next(token, params)),
        // Inline completion turned off (genls.completion.enabled "off", for
        // the window or the document's language) asks the server nothing,
        // even before the server's unregistration arrives.
        provideInlineCompletionItems: (document, position, context, token, next) =>
          completionAllowed(document) ? next(document, position, context, token) : null,
        workspace: {
          handleApplyEdit: (params, next) => this.edits.handleApplyEdit(params, p => next(p, CancellationToken.None)),
          // The server asks for section "genls"; answer with the same object as
          // initializationOptions.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return params.items.map((item, i) => (item.section === 'genls' ? this.settings() : result[i]));
          },
        },
      },
    };
    this.output.info(`starting ${command} ${serverOptions.args?.join(' ')}`);
    const client = new LanguageClient('genls', 'genls', serverOptions, clientOptions);
    this.client = client;
    // Instead of vscode-languageclient's plain message: the same text with
    // buttons that fix what it reports.
    client.onNotification(ShowMessageNotification.type, params => this.showServerMessage(params));
    client.onDidChangeState(e => {
      if (e.newState !== State.Running) {
        this.generations.reset();
      }
      this.completionStatus.setRunning(e.newState === State.Running);
    });
    this.watchCompletionRegistration(client);
    try {
      await client.start();
    } catch (err) {
      this.output.error(`could not start ${command}: ${errorText(err)}`);
      void vscode.window.showErrorMessage(`genls: could not start the language server (${command}): ${errorText(err)}`, 'Show Log')
        .then(choice => choice && this.output.show(true));
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.completionStatus.setRunning(false);
    if (client && client.state !== State.Stopped) {
      await client.stop().catch(err => this.output.warn(`stop: ${errorText(err)}`));
    }
    await client?.dispose().catch(() => undefined);
  }

  async restart(): Promise<void> {
    await this.starting;
    await this.stop();
    await this.start();
  }

  // settings builds the object the server reads as initializationOptions and
  // as the answer to workspace/configuration: the genls.* settings, nested as
  // the server expects, without unset values. The token is not in it: it
  // goes to the server process's environment.
  settings(): Record<string, unknown> {
    const config = vscode.workspace.getConfiguration('genls');
    const pick = (...keys: string[]) => {
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const value = config.get(key);
        if (value !== undefined && value !== null && value !== '') {
          out[key.slice(key.lastIndexOf('.') + 1)] = value;
        }
      }
      return out;
    };
    const endpoint = pick('endpoint.url', 'endpoint.backend', 'endpoint.model');
    const prompt: Record<string, unknown> = pick('prompt.template', 'prompt.system');
    const fim = pick('prompt.fim.preset', 'prompt.fim.prefix', 'prompt.fim.suffix', 'prompt.fim.middle');
    if (Object.keys(fim).length > 0) {
      prompt.fim = fim;
    }
    // genls.completion.*: camelCase here, snake_case for the server;
    // "auto" is sent as no completion.enabled at all.
    const completion: Record<string, unknown> = {};
    const enabled = serverCompletionEnabled();
    if (enabled !== undefined) {
      completion.enabled = enabled;
    }
    for (const [key, name] of [['maxLines', 'max_lines'], ['maxNewTokens', 'max_new_tokens'], ['debounceMs', 'debounce_ms']]) {
      const value = config.get(`completion.${key}`);
      if (typeof value === 'number') {
        completion[name] = value;
      }
    }
    return {
      endpoint,
      completion,
      parameters: pick(
        'parameters.max_new_tokens',
        'parameters.top_k',
        'parameters.top_p',
        'parameters.temperature',
        'parameters.repetition_penalty',
        'parameters.stop_sequences',
        'parameters.seed',
        'parameters.truncate',
      ),
      prompt,
      log: pick('log.level', 'log.file'),
    };
  }

  async pushSettings(): Promise<void> {
    const client = this.client;
    if (!client?.isRunning()) {
      return;
    }
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { genls: this.settings() } })
      .catch(err => this.output.warn(`didChangeConfiguration: ${errorText(err)}`));
  }

  // completionRegistered reports whether the server has registered inline
  // completion with the client.
  private completionRegistered(): boolean {
    const state = this.client?.isRunning() ? this.client.getFeature(InlineCompletionRequest.method)?.getState() : undefined;
    return state?.kind === 'document' && state.registrations;
  }

  // watchCompletionRegistration updates the status-bar item whenever the
  // server registers or unregisters inline completion.
  private watchCompletionRegistration(client: LanguageClient): void {
    const feature = client.getFeature(InlineCompletionRequest.method);
    if (!feature) {
      return;
    }
    const register = feature.register.bind(feature);
    const unregister = feature.unregister.bind(feature);
    const clear = feature.clear.bind(feature);
    feature.register = data => {
      register(data);
      this.completionStatus.update();
    };
    feature.unregister = id => {
      unregister(id);
      this.completionStatus.update();
    };
    feature.clear = () => {
      clear();
      this.completionStatus.update();
    };
  }

  // toggleCompletion turns inline completion off when it is on, else on
  // (genls.completion.enabled in the User settings).
  async toggleCompletion(): Promise<void> {
    await toggleCompletion(this.completionStatus.on());
  }

  // tokenChanged restarts the server: the token lives in its environment.
  async tokenChanged(): Promise<void> {
    await this.restart();
  }

  configurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (e.affectsConfiguration('genls.serverPath')) {
      void this.restart();
    } else if (e.affectsConfiguration('genls')) {
      void this.pushSettings();
    }
  }

  // generate runs the server's genls.generate on the active editor's selection
  // (an empty selection continues at the cursor).
  async generate(instruction?: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('genls: open a file and select text to generate from.');
      return;
    }
    await this.run(editor, editor.selection.isEmpty ? 'here' : 'insert', instruction);
  }

  // generateWithInstruction is generate after asking what to do.
  async generateWithInstruction(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('genls: open a file and select text to generate from.');
      return;
    }
    const instruction = await ask(this.instructions, 'genls: Generate…', 'Generate without an instruction');
    if (instruction === undefined) {
      return;
    }
    await this.run(editor, editor.selection.isEmpty ? 'here' : 'insert', instruction);
  }

  // rewrite asks what to do, then rewrites the selection: the new text
  // streams in after it, and Accept or Discard keeps one of the two.
  async rewrite(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.selection.isEmpty) {
      void vscode.window.showInformationMessage('genls: select the text to rewrite first.');
      return;
    }
    const instruction = await ask(this.instructions, 'genls: Rewrite…', 'Rewrite without an instruction');
    if (instruction === undefined) {
      return;
    }
    await this.run(editor, 'rewrite', instruction);
  }

  private async run(editor: vscode.TextEditor, mode: 'insert' | 'here' | 'rewrite', instruction?: string): Promise<void> {
    const client = await this.running();
    if (!client) {
      return;
    }
    await vscode.commands.executeCommand('genls.generate', {
      uri: client.code2ProtocolConverter.asUri(editor.document.uri),
      range: client.code2ProtocolConverter.asRange(editor.selection),
      mode,
      ...(instruction ? { instruction } : {}),
    });
  }

  // executeCommand is the middleware every server command goes through,
  // whether run from a code action, a code lens or this extension. A
  // generation about to start gets its own undo step and its document's
  // progress notification, and the selection it was made from is collapsed
  // to its end: inserting there would otherwise stretch the selection over
  // the generated text, and the next keystroke would replace it all.
  private async executeCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): Promise<unknown> {
    if (command !== 'genls.generate' && command !== 'genls.regenerate') {
      return next(command, args);
    }
    const target = args[0] as { uri?: string; range?: unknown } | undefined;
    const client = this.client;
    if (!client || typeof target?.uri !== 'string') {
      return next(command, args);
    }
    const uri = client.protocol2CodeConverter.asUri(target.uri);
    if (command === 'genls.generate') {
      this.lastGenerate = args;
      collapseSelections(uri);
    }
    this.edits.startRun(uri);
    const answered = this.generations.expect(uri);
    try {
      return await next(command, args);
    } finally {
      answered();
    }
  }

  private generationEnded(uri: string | undefined, end: string): void {
    const stats = uri ? this.edits.runStats(uri) : undefined;
    const how = stats ? `; ${stats.edits} edits in ${stats.undoSteps} undo ${stats.undoSteps === 1 ? 'step' : 'steps'}` : '';
    this.output.info(`generation in ${uri ?? 'an unknown document'} ended: ${end}${how}`);
  }

  // cancel stops the generation running in the active editor's document, or
  // every generation when there is none there.
  async cancel(): Promise<void> {
    const client = await this.running();
    if (!client) {
      return;
    }
    const doc = vscode.window.activeTextEditor?.document;
    if (doc && this.generations.isGenerating(doc.uri)) {
      await vscode.commands.executeCommand('genls.cancel', { uri: client.code2ProtocolConverter.asUri(doc.uri) });
    } else {
      await vscode.commands.executeCommand('genls.cancel');
    }
  }

  // review runs Accept, Discard or Regenerate on the generations at the
  // active editor's cursor (or touching its selection).
  async review(command: ReviewCommand): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = editor && await this.running();
    if (!editor || !client) {
      return;
    }
    const count = await vscode.commands.executeCommand<number>(command, {
      uri: client.code2ProtocolConverter.asUri(editor.document.uri),
      range: client.code2ProtocolConverter.asRange(editor.selection),
    });
    if (count === 0) {
      void vscode.window.showInformationMessage('genls: no generation at the cursor awaits review.');
    }
  }

  // setToken stores, replaces or removes the API token. Removing is an
  // explicit choice: an empty entry is refused, never taken as "delete".
  async setToken(): Promise<void> {
    const stored = await this.context.secrets.get(tokenKey);
    if (stored) {
      const replace = 'Replace token…';
      const remove = 'Remove token';
      const choice = await vscode.window.showQuickPick([
        { label: replace, description: 'enter a new token' },
        { label: remove, description: 'genls then falls back to HF_TOKEN or `huggingface-cli login`' },
      ], {
        title: `genls: an API token is stored (${maskToken(stored)})`,
        placeHolder: 'Replace or remove the stored token',
        ignoreFocusOut: true,
      });
      if (choice?.label === remove) {
        await this.context.secrets.delete(tokenKey);
        void vscode.window.showInformationMessage('genls: API token removed.');
        return;
      }
      if (choice?.label !== replace) {
        return;
      }
    }
    const value = await vscode.window.showInputBox({
      title: stored ? 'genls: new API token' : 'genls: API token (none stored yet)',
      prompt: 'Sent to the endpoint as a Bearer token; kept in VS Code\'s secret storage.',
      password: true,
      ignoreFocusOut: true,
      validateInput: v => (v.trim() === '' ? 'Enter a token, or press Escape to cancel.' : undefined),
    });
    if (value === undefined || value.trim() === '') {
      return;
    }
    await this.context.secrets.store(tokenKey, value.trim());
    void vscode.window.showInformationMessage('genls: API token saved.');
    // secrets.onDidChange restarts the server with the new token.
  }

  // showServerMessage shows the server's window/showMessage, an error with
  // the buttons that fix it (see messages.ts).
  private showServerMessage(params: ShowMessageParams): void {
    switch (params.type) {
      case MessageType.Error: {
        const fixes = fixesFor(params.message).filter(f => f !== 'Retry' || this.lastGenerate);
        void vscode.window.showErrorMessage(params.message, ...fixes).then(choice => choice && this.fix(choice));
        break;
      }
      case MessageType.Warning:
        void vscode.window.showWarningMessage(params.message);
        break;
      default:
        void vscode.window.showInformationMessage(params.message);
    }
  }

  private async fix(fix: Fix): Promise<void> {
    switch (fix) {
      case 'Open Settings':
        await vscode.commands.executeCommand('workbench.action.openSettings', 'genls.endpoint');
        break;
      case 'Set API Token':
        await this.setToken();
        break;
      case 'Retry':
        if (this.lastGenerate && await this.running()) {
          await vscode.commands.executeCommand('genls.generate', ...this.lastGenerate);
        }
        break;
      case 'Show Log':
        this.output.show(true);
        break;
    }
  }

  private async running(): Promise<LanguageClient | undefined> {
    await this.starting;
    if (!this.client?.isRunning()) {
      const choice = await vscode.window.showErrorMessage('genls: the language server is not running.', 'Show Log', 'Restart Server');
      if (choice === 'Show Log') {
        this.output.show(true);
      } else if (choice === 'Restart Server') {
        await this.restart();
      }
      return undefined;
    }
    return this.client;
  }
}

// RestartLimiter restarts a server that exits unexpectedly, at most maxRestarts
// times within restartWindowMs, then gives up with a message pointing at the log.
class RestartLimiter implements ErrorHandler {
  private restarts: number[] = [];

  constructor(private readonly output: vscode.LogOutputChannel) {}

  error(_error: Error, _message: Message | undefined, count: number | undefined): ErrorHandlerResult {
    // With no count the error is the pipe's own (EPIPE: a message written
    // to a server that just died). Shutting down here would stop the client
    // for good, closed() never asked; the closed pipe calls closed() anyway.
    if (count === undefined) {
      return { action: ErrorAction.Continue, handled: true };
    }
    return { action: count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown };
  }

  closed(): CloseHandlerResult {
    const now = Date.now();
    this.restarts = this.restarts.filter(t => now - t < restartWindowMs);
    if (this.restarts.length < maxRestarts) {
      this.restarts.push(now);
      this.output.warn(`the server exited; restarting (${this.restarts.length}/${maxRestarts})`);
      return { action: CloseAction.Restart, handled: true };
    }
    void vscode.window.showErrorMessage(
      `genls: the server crashed ${maxRestarts + 1} times in ${restartWindowMs / 60000} minutes and will not be restarted.`,
      'Show Log',
      'Restart Server',
    ).then(choice => {
      if (choice === 'Show Log') {
        this.output.show(true);
      } else if (choice === 'Restart Server') {
        void vscode.commands.executeCommand('genls.restartServer');
      }
    });
    return { action: CloseAction.DoNotRestart, handled: true };
  }
}

// resolveServerPath returns the genls executable to run: genls.serverPath, else
// the binary bundled in a platform-specific package, else genls on PATH.
function resolveServerPath(context: vscode.ExtensionContext): string | undefined {
  const exe = process.platform === 'win32' ? 'genls.exe' : 'genls';
  let configured = vscode.workspace.getConfiguration('genls').get<string>('serverPath')?.trim();
  if (configured) {
    if (configured === '~' || configured.startsWith('~/')) {
      configured = path.join(os.homedir(), configured.slice(1));
    }
    return configured;
  }
  const bundled = context.asAbsolutePath(path.join('bin', exe));
  if (fs.existsSync(bundled)) {
    ensureExecutable(bundled);
    return bundled;
  }
  return findOnPath(exe);
}

function findOnPath(exe: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) {
      continue;
    }
    const candidate = path.join(dir, exe);
    try {
      fs.accessSync(candidate, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) {
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

// ensureExecutable restores the executable bit on the bundled binary, in case
// unpacking the .vsix lost it.
function ensureExecutable(file: string): void {
  if (process.platform === 'win32') {
    return;
  }
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    try {
      fs.chmodSync(file, 0o755);
    } catch {
      // starting it will report the problem
    }
  }
}

// collapseSelections collapses each selection in the editors showing uri to
// its end, where a generation from it inserts its text.
function collapseSelections(uri: vscode.Uri): void {
  for (const editor of vscode.window.visibleTextEditors) {
    if (editor.document.uri.toString() !== uri.toString()) {
      continue;
    }
    editor.selections = editor.selections.map(s => (s.isEmpty ? s : new vscode.Selection(s.end, s.end)));
  }
}

// maskToken shows enough of a token to recognise it, like genls doctor.
function maskToken(token: string): string {
  return token.length <= 8 ? '*'.repeat(token.length) : `${token.slice(0, 3)}******${token.slice(-2)}`;
}

function copyLines(input: Readable, output: vscode.LogOutputChannel): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 })
    .on('line', line => output.appendLine(line));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
