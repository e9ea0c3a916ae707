// Generations follows the generations genls runs and has pending, to show
// them the way VS Code users expect: a progress notification with Cancel
// instead of the status-bar spinner vscode-languageclient makes of the
// server's $/progress, a short result when one ends, and the context keys
// the keybindings depend on:
//
//   genls.generating  a generation is running in the active editor's document (Esc cancels it)
//   genls.pending     a generation in the active editor's document awaits Accept or Discard
import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  ProgressToken,
  WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from 'vscode-languageclient/node';

// A generation the server reports progress for.
type Running = {
  // The document it writes into, when known (see expect).
  uri?: string;
  started: number;
  report: (message: string) => void;
  done: () => void;
};

// The codes of genls's diagnostics over generated text (the server's contract).
const codeGenerating = 'genls.generating';
const codePending = 'genls.pending';

export class Generations implements vscode.Disposable {
  private readonly running = new Map<string, Running>();
  // Documents whose genls.generate (or genls.regenerate) request is in
  // flight: the server begins the generation's progress before it answers,
  // so a progress that begins meanwhile is that document's.
  private readonly expected: string[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  private contextKeys = { generating: false, pending: false };

  constructor(
    private readonly client: () => LanguageClient | undefined,
    // Told of every generation that ends, with the server's end message.
    private readonly ended: (uri: string | undefined, end: string) => void,
  ) {
    this.disposables.push(
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
      vscode.languages.onDidChangeDiagnostics(() => this.updateContext()),
    );
    void this.setContext(true);
  }

  dispose(): void {
    this.reset();
    vscode.Disposable.from(...this.disposables).dispose();
  }

  // expect notes that a generation for uri is being requested, until the
  // returned function is called (when the request has been answered).
  expect(uri: vscode.Uri): () => void {
    const key = uri.toString();
    this.expected.push(key);
    return () => {
      const i = this.expected.lastIndexOf(key);
      if (i >= 0) {
        this.expected.splice(i, 1);
      }
    };
  }

  // isGenerating reports whether a generation is running in uri's document.
  isGenerating(uri: vscode.Uri): boolean {
    const key = uri.toString();
    return [...this.running.values()].some(r => r.uri === key) || diagnosticCodes(uri).has(codeGenerating);
  }

  // reset forgets every running generation: the server went away.
  reset(): void {
    for (const r of this.running.values()) {
      r.done();
    }
    this.running.clear();
    this.updateContext();
  }

  // handleWorkDoneProgress is the middleware of the same name. It shows
  // genls's progress itself and lets vscode-languageclient see only the end,
  // so that its own (status bar) progress never starts and is cleaned up.
  handleWorkDoneProgress(
    token: ProgressToken,
    params: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd,
    next: () => void,
  ): void {
    const key = String(token);
    switch (params.kind) {
      case 'begin':
        this.begin(key, token, params);
        break;
      case 'report':
        if (params.message) {
          this.running.get(key)?.report(params.message);
        }
        break;
      case 'end':
        this.end(key, params);
        next();
        break;
    }
  }

  private begin(key: string, token: ProgressToken, params: WorkDoneProgressBegin): void {
    const uri = this.expected.at(-1) ?? vscode.window.activeTextEditor?.document.uri.toString();
    let report: (message: string) => void = () => undefined;
    let done: () => void = () => undefined;
    const finished = new Promise<void>(resolve => (done = resolve));
    const file = uri ? ` in ${path.basename(vscode.Uri.parse(uri).path)}` : '';
    void vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification,
      title: `genls: ${params.title.replace(/…$/, '')}${file}`,
      cancellable: params.cancellable ?? true,
    }, (progress, cancel) => {
      report = message => progress.report({ message });
      if (params.message) {
        report(params.message);
      }
      cancel.onCancellationRequested(() => {
        void this.client()?.sendNotification(WorkDoneProgressCancelNotification.type, { token });
      });
      return finished;
    });
    this.running.set(key, { uri, started: Date.now(), report: m => report(m), done: () => done() });
    this.updateContext();
  }

  private end(key: string, params: WorkDoneProgressEnd): void {
    const r = this.running.get(key);
    if (!r) {
      return;
    }
    this.running.delete(key);
    r.done();
    this.updateContext();
    this.ended(r.uri, params.message ?? '');
    const seconds = (Date.now() - r.started) / 1000;
    const message = resultMessage(params.message ?? '', seconds);
    if (message && vscode.workspace.getConfiguration('genls').get<boolean>('showResult', true)) {
      void vscode.window.showInformationMessage(message);
    }
  }

  private updateContext(): void {
    void this.setContext(false);
  }

  private async setContext(force: boolean): Promise<void> {
    const uri = vscode.window.activeTextEditor?.document.uri;
    const generating = uri !== undefined && this.isGenerating(uri);
    const pending = uri !== undefined && (generating || diagnosticCodes(uri).has(codePending));
    if (force || generating !== this.contextKeys.generating) {
      await vscode.commands.executeCommand('setContext', 'genls.generating', generating);
    }
    if (force || pending !== this.contextKeys.pending) {
      await vscode.commands.executeCommand('setContext', 'genls.pending', pending);
    }
    this.contextKeys = { generating, pending };
  }
}

// resultMessage words the end of a generation for the user: the server ends
// its progress with "<finish reason>: <n> tokens, <rate> tokens/s",
// "cancelled" or "failed: <error>". A failure gets no result message: the
// server shows the error itself.
export function resultMessage(end: string, seconds: number): string | undefined {
  const time = `${seconds.toFixed(1)} s`;
  const done = /^(.+): (\d+) tokens?, ([\d.]+) tokens\/s$/.exec(end);
  if (done) {
    const [, reason, tokens, rate] = done;
    return `genls: ${tokens} ${tokens === '1' ? 'token' : 'tokens'} in ${time} (${rate} tokens/s), finish reason: ${reason}.`;
  }
  if (end === 'cancelled') {
    return `genls: generation cancelled after ${time}.`;
  }
  return undefined;
}

// diagnosticCodes returns the codes of genls's diagnostics in uri's document.
function diagnosticCodes(uri: vscode.Uri): Set<string> {
  const codes = new Set<string>();
  for (const d of vscode.languages.getDiagnostics(uri)) {
    if (d.source === 'genls') {
      codes.add(String(typeof d.code === 'object' ? d.code.value : d.code));
    }
  }
  return codes;
}
