// Inline completion (ghost text): the setting genls.completion.enabled, the
// status-bar item that shows and toggles it, and the check the language
// client's inline completion middleware makes before every request.
//
// The server registers textDocument/inlineCompletion dynamically when
// completion is enabled (explicitly, or by its own rule for "auto": on for
// completion endpoints such as TGI and fill-in-the-middle models) and
// unregisters it when a settings change turns it off; vscode-languageclient
// (≥ 10.0.1) turns the registration into an InlineCompletionItemProvider.
// The middleware check makes "off" take effect at once, before the server's
// unregistration arrives, and for the languages where a language-specific
// setting ("[markdown]": {"genls.completion.enabled": "off"}) turns it off
// while the server, which sees one value per window, keeps it registered.
import * as vscode from 'vscode';

export type CompletionSetting = 'auto' | 'on' | 'off';

// completionSetting is genls.completion.enabled for scope (a document: with
// its language's override), "auto" when unset or unknown.
export function completionSetting(scope?: vscode.ConfigurationScope): CompletionSetting {
  const value = vscode.workspace.getConfiguration('genls', scope).get<string>('completion.enabled');
  return value === 'on' || value === 'off' ? value : 'auto';
}

// completionAllowed reports whether the client may ask the server for inline
// completions in document.
export function completionAllowed(document: vscode.TextDocument): boolean {
  return completionSetting(document) !== 'off';
}

// serverCompletionEnabled is what settings() sends as completion.enabled:
// true for "on", false for "off", nothing for "auto" (the server decides).
export function serverCompletionEnabled(): boolean | undefined {
  switch (completionSetting()) {
    case 'on':
      return true;
    case 'off':
      return false;
    default:
      return undefined;
  }
}

// CompletionStatus is the status-bar item: "$(sparkle) genls" while inline
// completion is on for the active editor, "$(circle-slash) genls" while it
// is off; clicking it runs genls.toggleCompletion. It is hidden while the
// server is not running.
export class CompletionStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private running = false;

  // registered reports whether the server has registered inline completion.
  constructor(private readonly registered: () => boolean) {
    this.item = vscode.window.createStatusBarItem('genls.completion', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'genls Inline Completion';
    this.item.command = 'genls.toggleCompletion';
    this.disposables.push(
      this.item,
      vscode.window.onDidChangeActiveTextEditor(() => this.update()),
      vscode.workspace.onDidChangeConfiguration(e => {
        if (e.affectsConfiguration('genls.completion')) {
          this.update();
        }
      }),
    );
  }

  dispose(): void {
    for (const d of this.disposables) {
      d.dispose();
    }
  }

  setRunning(running: boolean): void {
    this.running = running;
    this.update();
  }

  // on reports whether inline completion is on for the active editor (or
  // the window, with none): the setting allows it and the server offers it.
  on(): boolean {
    const doc = vscode.window.activeTextEditor?.document;
    return completionSetting(doc) !== 'off' && this.registered();
  }

  update(): void {
    if (!this.running) {
      this.item.hide();
      return;
    }
    const doc = vscode.window.activeTextEditor?.document;
    const setting = completionSetting(doc);
    if (this.on()) {
      this.item.text = '$(sparkle) genls';
      this.item.tooltip = 'genls inline completion is on (ghost text; Tab accepts). Click to turn it off.';
    } else {
      this.item.text = '$(circle-slash) genls';
      this.item.tooltip = setting === 'off'
        ? 'genls inline completion is off. Click to turn it on.'
        : 'genls inline completion is off: the server offers none for this endpoint (genls.completion.enabled is "auto"). Click to turn it on.';
    }
    this.item.accessibilityInformation = { label: this.item.tooltip, role: 'button' };
    this.item.show();
  }
}

// toggleCompletion turns inline completion off when it is on, else on, in
// the User settings. It says so when a workspace or language setting keeps
// the other value.
export async function toggleCompletion(on: boolean): Promise<void> {
  const want: CompletionSetting = on ? 'off' : 'on';
  const config = vscode.workspace.getConfiguration('genls');
  await config.update('completion.enabled', want, vscode.ConfigurationTarget.Global);
  const doc = vscode.window.activeTextEditor?.document;
  const now = completionSetting(doc);
  if ((want === 'off') !== (now === 'off')) {
    void vscode.window.showInformationMessage(
      `genls: inline completion turned ${want} in the User settings, but a workspace or language setting of genls.completion.enabled ("${now}") overrides it here.`,
    );
  }
}
