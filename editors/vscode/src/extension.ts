// The genls extension: starts the genls language server over stdio and lets
// vscode-languageclient do the rest. Code actions, the server's commands
// (genls.generate, genls.cancel), progress notifications and error messages
// all come from the server; this file only adds the settings plumbing, the
// API token in SecretStorage and a few palette commands.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import type { Readable } from 'stream';
import * as vscode from 'vscode';
import {
  CloseAction,
  CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  ErrorHandler,
  ErrorHandlerResult,
  LanguageClient,
  LanguageClientOptions,
  Message,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

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
    vscode.commands.registerCommand('genls.editor.generate', () => session?.generate()),
    vscode.commands.registerCommand('genls.editor.cancel', () => session?.cancel()),
    vscode.commands.registerCommand('genls.showLog', () => output.show(true)),
    vscode.commands.registerCommand('genls.setToken', () => session?.setToken()),
    vscode.commands.registerCommand('genls.restartServer', () => session?.restart()),
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

// Session owns the language client for the extension's lifetime, across restarts.
class Session {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  // The API token, read from SecretStorage at start and on every change.
  private token: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly output: vscode.LogOutputChannel,
  ) {}

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
        workspace: {
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
    const fim = pick('prompt.fim.prefix', 'prompt.fim.suffix', 'prompt.fim.middle');
    if (Object.keys(fim).length > 0) {
      prompt.fim = fim;
    }
    return {
      endpoint,
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
  async generate(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('genls: open a file and select text to generate from.');
      return;
    }
    const client = await this.running();
    if (!client) {
      return;
    }
    await vscode.commands.executeCommand('genls.generate', {
      uri: client.code2ProtocolConverter.asUri(editor.document.uri),
      range: client.code2ProtocolConverter.asRange(editor.selection),
      here: editor.selection.isEmpty,
    });
  }

  // cancel stops every generation the server is running.
  async cancel(): Promise<void> {
    const client = await this.running();
    if (client) {
      await vscode.commands.executeCommand('genls.cancel');
    }
  }

  async setToken(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: 'genls: API token',
      prompt: 'Token sent to the endpoint as a Bearer token, kept in VS Code\'s secret storage. Leave empty to remove it.',
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined) {
      return;
    }
    if (value === '') {
      await this.context.secrets.delete(tokenKey);
      void vscode.window.showInformationMessage('genls: API token removed.');
    } else {
      await this.context.secrets.store(tokenKey, value.trim());
      void vscode.window.showInformationMessage('genls: API token saved.');
    }
    // secrets.onDidChange pushes the new settings to the server.
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
    return { action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown };
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

function copyLines(input: Readable, output: vscode.LogOutputChannel): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 })
    .on('line', line => output.appendLine(line));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
