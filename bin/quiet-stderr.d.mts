// Types of quiet-stderr.mjs for the TypeScript entry (src/cli/main.ts run directly).
export const CHILD_ENV: string;
export function opensNoWebGpu(args: readonly string[]): boolean;
export function runsInProcess(args: readonly string[], env?: Readonly<Record<string, string | undefined>>): boolean;
export function noiseFilter(write: (s: string) => void): { feed(text: string): void; end(): void };
export function adoptParentTerminal(env?: Readonly<Record<string, string | undefined>>): void;
export function runFiltered(nodeArgs: readonly string[]): Promise<number>;
export function exitAfterDrain(code: number): void;
