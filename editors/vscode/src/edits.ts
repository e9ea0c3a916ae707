// genls streams a generation into the document as many small
// workspace/applyEdit requests. Applied by vscode-languageclient's default
// (workspace.applyEdit), each is its own undo step: an 81-token generation
// took 81 Ctrl+Z. GenerationEdits applies them itself through the visible
// editor instead, with an undo stop only before the first edit of a run, so
// that one Ctrl+Z removes the whole generation and one redo restores it.
import * as vscode from 'vscode';
import {
  ApplyWorkspaceEditParams,
  ApplyWorkspaceEditResult,
  HandlerResult,
  LanguageClient,
  ResponseError,
  TextDocumentEdit,
  TextEdit,
} from 'vscode-languageclient/node';

// Where genls's last insertion into a document ended, and the document's
// version right after it: an insertion at that point into that version
// continues the same undo step.
type RunEnd = { version: number; end: vscode.Position };

// What applies an edit when GenerationEdits does not: vscode-languageclient's
// default, workspace.applyEdit.
type ApplyEditHandler = (params: ApplyWorkspaceEditParams) => HandlerResult<ApplyWorkspaceEditResult, void>;

// How the edits since the last startRun of a document were applied.
export type RunStats = { edits: number; undoSteps: number };

export class GenerationEdits {
  private readonly runEnds = new Map<string, RunEnd>();
  private readonly stats = new Map<string, RunStats>();
  // Edits are applied one at a time, in the order they arrive, as
  // vscode-languageclient does.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: () => LanguageClient | undefined) {}

  // startRun makes the next edit genls sends to uri begin a new undo step:
  // a new generation that starts where the last one ended is undone
  // separately.
  startRun(uri: vscode.Uri): void {
    this.runEnds.delete(uri.toString());
    this.stats.set(uri.toString(), { edits: 0, undoSteps: 0 });
  }

  // runStats says how many edits genls made to uri since the last startRun,
  // and in how many undo steps (for the log).
  runStats(uri: string): RunStats | undefined {
    return this.stats.get(uri);
  }

  // handleApplyEdit is the workspace.handleApplyEdit middleware.
  handleApplyEdit(
    params: ApplyWorkspaceEditParams,
    next: ApplyEditHandler,
  ): Promise<ApplyWorkspaceEditResult | ResponseError<void>> {
    const result = this.queue.then(() => this.apply(params, next));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async apply(
    params: ApplyWorkspaceEditParams,
    next: ApplyEditHandler,
  ): Promise<ApplyWorkspaceEditResult | ResponseError<void>> {
    const client = this.client();
    const target = client && singleDocumentEdit(params);
    if (!client || !target) {
      return next(params);
    }
    const uri = client.protocol2CodeConverter.asUri(target.uri);
    const key = uri.toString();
    const doc = vscode.workspace.textDocuments.find(d => d.uri.toString() === key);
    // Like vscode-languageclient: an edit made for another version of the
    // document is not applied, and genls sends it again for the current one.
    if (doc && target.version !== null && target.version >= 0 && doc.version !== target.version) {
      return { applied: false };
    }
    const editor = doc && visibleEditor(doc);
    if (!doc || !editor) {
      // Not shown: only workspace.applyEdit can change it, one undo step per edit.
      this.runEnds.delete(key);
      this.stats.delete(key);
      return next(params);
    }
    const edits = target.edits.map(e => ({ range: client.protocol2CodeConverter.asRange(e.range), text: e.newText }));
    const insertion = edits.length === 1 && edits[0].range.isEmpty ? edits[0] : undefined;
    const last = this.runEnds.get(key);
    const continues = insertion !== undefined && last !== undefined &&
      last.version === doc.version && last.end.isEqual(insertion.range.start);
    this.runEnds.delete(key);
    const versionBefore = doc.version;
    const lengthBefore = doc.getText().length;
    let applied: boolean;
    try {
      applied = await editor.edit(builder => {
        for (const e of edits) {
          if (e.range.isEmpty) {
            // insert, not replace: a cursor at the insertion point moves
            // along with the text instead of staying before it.
            builder.insert(e.range.start, e.text);
          } else {
            builder.replace(e.range, e.text);
          }
        }
      }, { undoStopBefore: !continues, undoStopAfter: false });
    } catch {
      // The editor was closed meanwhile.
      return next(params);
    }
    const stats = this.stats.get(key);
    if (applied && stats) {
      stats.edits++;
      stats.undoSteps += continues ? 0 : 1;
    }
    if (applied && insertion && doc.version === versionBefore + 1) {
      // The document's line breaks may differ from the edit's: measure the
      // inserted text in the document.
      const end = doc.offsetAt(insertion.range.start) + doc.getText().length - lengthBefore;
      this.runEnds.set(key, { version: doc.version, end: doc.positionAt(end) });
    }
    return { applied };
  }
}

// singleDocumentEdit returns the text edits of a workspace edit that changes
// one document and does nothing else (what genls sends), with the version
// it was made for (null: any).
function singleDocumentEdit(params: ApplyWorkspaceEditParams): { uri: string; version: number | null; edits: TextEdit[] } | undefined {
  const { documentChanges, changes } = params.edit;
  if (documentChanges) {
    if (documentChanges.length !== 1 || !TextDocumentEdit.is(documentChanges[0])) {
      return undefined;
    }
    const change = documentChanges[0];
    // Annotated edits need the user's confirmation: leave them to VS Code.
    if (change.edits.some(e => 'annotationId' in e || 'snippet' in e)) {
      return undefined;
    }
    return { uri: change.textDocument.uri, version: change.textDocument.version, edits: change.edits as TextEdit[] };
  }
  const uris = Object.keys(changes ?? {});
  if (uris.length !== 1 || params.edit.changeAnnotations) {
    return undefined;
  }
  return { uri: uris[0], version: null, edits: changes![uris[0]] };
}

// visibleEditor returns an editor showing doc, the active one if it does.
function visibleEditor(doc: vscode.TextDocument): vscode.TextEditor | undefined {
  const active = vscode.window.activeTextEditor;
  if (active?.document === doc) {
    return active;
  }
  return vscode.window.visibleTextEditors.find(e => e.document === doc);
}
