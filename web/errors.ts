// Errors on the page as on the command line: one line, `error: <what>: <why>`, never a silent
// failure. The first line of the message is what a user needs; stacks go to the console.
import { $ } from './dom.js';

export function messageOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}

export function showError(e: unknown): void {
  const line = $('error');
  line.textContent = `error: ${messageOf(e)}`;
  line.hidden = false;
  console.error(e);
}

export function clearError(): void {
  $('error').hidden = true;
}

/** Run a page action: its failure is shown as the one error line and marks `panel` as failed. */
export async function guarded(panel: HTMLElement | null, fn: () => Promise<void>): Promise<void> {
  clearError();
  if (panel) panel.dataset.state = 'running';
  try {
    await fn();
    if (panel) panel.dataset.state = 'done';
  } catch (e) {
    if (panel) panel.dataset.state = 'error';
    showError(e);
  }
}

export function installGlobalHandlers(): void {
  window.addEventListener('error', (ev) => showError(ev.error ?? ev.message));
  window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
}
