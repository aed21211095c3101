// Path arithmetic as plain strings ('/' separated), the same in Node and in a browser. Node
// accepts '/' on every platform; absolute forms come from FileSystem.resolve.

export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== '').join('/');
  return normalize(joined === '' ? '.' : joined);
}

export function normalize(path: string): string {
  const abs = path.startsWith('/');
  const out: string[] = [];
  for (const seg of path.split(/[\\/]+/)) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (seg !== '..' || !abs) out.push(seg);
  }
  const s = out.join('/');
  return abs ? `/${s}` : s === '' ? '.' : s;
}

export function dirname(path: string): string {
  const p = path.replace(/[\\/]+$/, '');
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  if (i < 0) return '.';
  if (i === 0) return '/';
  return p.slice(0, i);
}

export function basename(path: string): string {
  const p = path.replace(/[\\/]+$/, '');
  return p.slice(Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\')) + 1);
}

export function isAbsolute(path: string): boolean {
  return path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path);
}

/** True when `child` (normalised) lies inside `parent` (normalised). */
export function isInside(parent: string, child: string): boolean {
  const p = normalize(parent);
  const c = normalize(child);
  if (p === '.') return !isAbsolute(c) && c !== '..' && !c.startsWith('../');
  return c === p || c.startsWith(p === '/' ? '/' : `${p}/`);
}
