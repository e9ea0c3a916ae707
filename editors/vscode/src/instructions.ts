// Instructions for "genls: Generate…" and "genls: Rewrite…": asked for in a
// QuickPick whose items are the instructions given before, so that the
// usual ones are a few keystrokes away.
import * as vscode from 'vscode';

// The globalState key of the history, shared by both commands and kept
// across sessions and workspaces.
const historyKey = 'genls.instructions';

// How many instructions the history keeps.
export const historySize = 20;

// remember returns history with instruction first (moved there if it was
// already in it), at most size long. Blank instructions are not kept.
export function remember(history: readonly string[], instruction: string, size = historySize): string[] {
  if (instruction.trim() === '') {
    return [...history].slice(0, size);
  }
  return [instruction, ...history.filter(h => h !== instruction)].slice(0, size);
}

export class InstructionHistory {
  constructor(private readonly state: vscode.Memento) {}

  get(): string[] {
    const value = this.state.get<unknown>(historyKey);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  }

  async add(instruction: string): Promise<void> {
    await this.state.update(historyKey, remember(this.get(), instruction));
  }
}

type Item = vscode.QuickPickItem & { instruction: string };

// ask shows the input box and resolves to the instruction: what was typed,
// as typed, or the history item picked; '' when Enter was pressed on an
// empty box; undefined when it was dismissed (Escape). A non-empty
// instruction goes to the front of the history.
export async function ask(history: InstructionHistory, title: string, withoutLabel: string): Promise<string | undefined> {
  const previous = history.get();
  const pick = vscode.window.createQuickPick<Item>();
  pick.title = title;
  pick.placeholder = previous.length > 0
    ? 'Type an instruction, or pick a previous one (Enter on an empty box: none)'
    : 'Type an instruction (Enter on an empty box: none)';
  pick.matchOnDescription = false;
  const historyItems: Item[] = previous.map(h => ({ label: h, description: 'previous', instruction: h }));
  // The first item is always what Enter does right now: without an
  // instruction on an empty box, else the typed text as it is.
  const update = () => {
    const typed = pick.value;
    const first: Item = typed.trim() === ''
      ? { label: withoutLabel, instruction: '', alwaysShow: true }
      : { label: typed, description: 'instruction', instruction: typed, alwaysShow: true };
    pick.items = [first, ...historyItems.filter(i => i.instruction !== typed)];
    pick.activeItems = [first];
  };
  update();
  const result = await new Promise<string | undefined>(resolve => {
    pick.onDidChangeValue(update);
    pick.onDidAccept(() => {
      const chosen = pick.selectedItems[0] ?? pick.activeItems[0];
      resolve(chosen ? chosen.instruction : pick.value);
      pick.hide();
    });
    pick.onDidHide(() => resolve(undefined));
    pick.show();
  });
  pick.dispose();
  if (result) {
    await history.add(result);
  }
  return result;
}
