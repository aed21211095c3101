// A restricted interpreter of pickle protocol 2, as torch.save and torch.jit.save write it
// (spec/checkpoint-formats.md §5). It knows only the opcodes that build tensors, storages and
// plain containers and only the globals of the allowlist; GLOBALs are never resolved (they become
// labels), so nothing the file names is ever run. Anything else is refused with the opcode byte
// or the global's name and its offset. Sizes the file claims are checked against the bytes
// before anything is allocated from them; the stack and the MARK nesting are bounded.
import { STORAGE_DTYPES, storageRefusal } from './dtypes.js';
import { PickleTruncated, TorchFormatError } from './errors.js';
import { viewOf } from './storage.js';
import { describe, Global, PyDict, type PyKey, PyList, PyTuple, type PyValue, ScriptObject, StorageRef, TensorRef } from './values.js';

/** Values on the stack at once (a state dict pushes about 2000 in one SETITEMS batch). */
export const MAX_STACK = 1_000_000;
/** Open MARKs at once (checkpoints nest a few dozen). */
export const MAX_MARKS = 1000;
/** Longest GLOBAL module or name line. */
const MAX_GLOBAL_LINE = 1024;

export interface PickleContext {
  /** the file, for messages */
  file: string;
  /** which pickle (e.g. `data.pkl`), for messages */
  record: string;
  /** persistent ids have 5 fields (zip) or 6 (legacy stream: the 6th is None) */
  pidFields: 5 | 6;
  /** storages by key, shared by every pickle of one file (one key, one dtype and size) */
  storages: Map<string, StorageRef>;
  /** where storage records live, for messages (`data/`, `constants/`) */
  storageDir: string;
}

const OPCODE_NAMES = new Map<number, string>([
  [0x28, 'MARK'], [0x2e, 'STOP'], [0x30, 'POP'], [0x31, 'POP_MARK'], [0x32, 'DUP'], [0x46, 'FLOAT'],
  [0x49, 'INT'], [0x4a, 'BININT'], [0x4b, 'BININT1'], [0x4c, 'LONG'], [0x4d, 'BININT2'], [0x4e, 'NONE'],
  [0x50, 'PERSID'], [0x51, 'BINPERSID'], [0x52, 'REDUCE'], [0x53, 'STRING'], [0x54, 'BINSTRING'],
  [0x55, 'SHORT_BINSTRING'], [0x56, 'UNICODE'], [0x58, 'BINUNICODE'], [0x61, 'APPEND'], [0x62, 'BUILD'],
  [0x63, 'GLOBAL'], [0x64, 'DICT'], [0x7d, 'EMPTY_DICT'], [0x65, 'APPENDS'], [0x67, 'GET'], [0x68, 'BINGET'],
  [0x69, 'INST'], [0x6a, 'LONG_BINGET'], [0x6c, 'LIST'], [0x5d, 'EMPTY_LIST'], [0x6f, 'OBJ'], [0x70, 'PUT'],
  [0x71, 'BINPUT'], [0x72, 'LONG_BINPUT'], [0x73, 'SETITEM'], [0x74, 'TUPLE'], [0x29, 'EMPTY_TUPLE'],
  [0x75, 'SETITEMS'], [0x47, 'BINFLOAT'], [0x80, 'PROTO'], [0x81, 'NEWOBJ'], [0x82, 'EXT1'], [0x83, 'EXT2'],
  [0x84, 'EXT4'], [0x85, 'TUPLE1'], [0x86, 'TUPLE2'], [0x87, 'TUPLE3'], [0x88, 'NEWTRUE'],
  [0x89, 'NEWFALSE'], [0x8a, 'LONG1'], [0x8b, 'LONG4'], [0x42, 'BINBYTES'], [0x43, 'SHORT_BINBYTES'],
  [0x8c, 'SHORT_BINUNICODE'], [0x8d, 'BINUNICODE8'], [0x8e, 'BINBYTES8'], [0x8f, 'EMPTY_SET'],
  [0x90, 'ADDITEMS'], [0x91, 'FROZENSET'], [0x92, 'NEWOBJ_EX'], [0x93, 'STACK_GLOBAL'], [0x94, 'MEMOIZE'],
  [0x95, 'FRAME'], [0x96, 'BYTEARRAY8'], [0x97, 'NEXT_BUFFER'], [0x98, 'READONLY_BUFFER'],
]);

const IDENT_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Storage keys name a record beside the others: a plain name, never a path. */
const STORAGE_KEY = /^[A-Za-z0-9_]{1,64}$/;

const REDUCIBLE = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch.jit._pickle.restore_type_tag',
  'torch.jit._pickle.build_intlist',
  'torch.jit._pickle.build_tensorlist',
  'torch.jit._pickle.build_doublelist',
  'torch.jit._pickle.build_boollist',
]);

function isScriptClass(g: Global): boolean {
  return g.module === '__torch__' || g.module.startsWith('__torch__.');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** An int as a message shows it: in full, or its digit count when it is absurdly long. */
function shownInt(v: number | bigint): string {
  const s = String(v);
  return s.length > 24 ? `a ${s.replace('-', '').length}-digit number` : s;
}

export interface PickleResult {
  value: PyValue;
  /** offset one past the STOP opcode */
  end: number;
}

/**
 * Run the pickle that starts at `start` in `bytes` up to its STOP. Refusals are TorchFormatErrors;
 * running past the end of `bytes` is a PickleTruncated (the caller may have more bytes to give).
 */
export function unpickle(bytes: Uint8Array, start: number, ctx: PickleContext): PickleResult {
  const end = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = start;
  let at = start;

  const where = () => `at byte ${at - start} of ${ctx.record}`;
  const fail = (problem: string): never => {
    throw new TorchFormatError(ctx.file, problem);
  };
  const need = (n: number) => {
    if (pos + n > end) throw new PickleTruncated(pos + n - start, at - start);
  };
  const push = (v: PyValue) => {
    if (stack.length >= MAX_STACK) fail(`pickle stack grows past ${MAX_STACK} values ${where()} (a checkpoint needs far fewer)`);
    stack.push(v);
  };
  const fence = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): PyValue => {
    if (stack.length <= fence()) fail(`pickle stack underflow ${where()} (${OPCODE_NAMES.get(bytes[at])} needs a value the stack does not hold)`);
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length <= fence()) fail(`pickle stack underflow ${where()} (${OPCODE_NAMES.get(bytes[at])} needs a value the stack does not hold)`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    if (marks.length === 0) fail(`${OPCODE_NAMES.get(bytes[at])} ${where()} without a MARK`);
    const m = marks.pop()!;
    return stack.splice(m);
  };
  const readLine = (): string => {
    const limit = Math.min(end, pos + MAX_GLOBAL_LINE + 1);
    let i = pos;
    while (i < limit && bytes[i] !== 0x0a) i++;
    if (i === limit) {
      if (limit === end) throw new PickleTruncated(end - start + 1, at - start);
      fail(`GLOBAL ${where()} names a module or name longer than ${MAX_GLOBAL_LINE} bytes`);
    }
    let s = '';
    for (let k = pos; k < i; k++) s += String.fromCharCode(bytes[k]);
    pos = i + 1;
    return s;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`pickle memo index ${i} ${where()} was never stored (BINPUT); the pickle is corrupt`);
    push(memo.get(i)!);
  };
  const memoPut = (i: number) => {
    memo.set(i, top());
  };
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

  const admitGlobal = (module: string, name: string): Global => {
    const g = new Global(module, name);
    const refuse = (why: string): never => fail(`refused pickle global ${JSON.stringify(g.qualified).slice(1, -1)} ${where()} (${why})`);
    if (!IDENT_PATH.test(module) || !IDENT.test(name)) refuse('not a Python name');
    if (REDUCIBLE.has(g.qualified)) return g;
    if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return g;
    if (module === 'torch' && name.endsWith('Storage')) refuse(storageRefusal(name) ?? 'not a storage class of the format');
    if (isScriptClass(g)) return g;
    return refuse('a checkpoint holds only tensors, storages and containers');
  };

  const setItem = (d: PyValue, k: PyValue, v: PyValue) => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) ${where()} on ${describe(d)} (expected a dict)`);
    if (typeof k !== 'string' && !(typeof k === 'number' && Number.isInteger(k)) && typeof k !== 'bigint') {
      fail(`dict key ${describe(k)} ${where()} (checkpoint dicts have str or int keys)`);
    }
    (d as PyDict).items.set(k as PyKey, v);
  };

  const persistent = (pid: PyValue): StorageRef => {
    const n = ctx.pidFields;
    if (!(pid instanceof PyTuple) || pid.items.length !== n || pid.items[0] !== 'storage') {
      return fail(`persistent id ${where()} is ${describe(pid)}; expected ('storage', storage class, key, location, numel${n === 6 ? ', None' : ''})`);
    }
    const [, cls, key, location, numel, viewMeta] = pid.items;
    if (!(cls instanceof Global) || cls.module !== 'torch' || !Object.hasOwn(STORAGE_DTYPES, cls.name)) {
      return fail(`persistent id ${where()} names ${describe(cls)} as its storage class; expected torch.<X>Storage`);
    }
    if (typeof key !== 'string' || !STORAGE_KEY.test(key)) {
      return fail(`persistent id ${where()} has storage key ${typeof key === 'string' ? JSON.stringify(key) : describe(key)}; expected a plain record name such as "0"`);
    }
    if (typeof location !== 'string') return fail(`persistent id ${where()} has location ${describe(location)}; expected a str such as "cpu"`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      const n = typeof numel === 'number' || typeof numel === 'bigint' ? shownInt(numel) : describe(numel);
      return fail(`storage ${ctx.storageDir}${key} ${where()} claims ${n}${n.endsWith('number') ? ' of' : ''} elements; expected a count below 2^53`);
    }
    if (n === 6 && viewMeta !== null) return fail(`storage ${key} ${where()} is a legacy storage view; only whole storages are supported`);
    const dtype = STORAGE_DTYPES[cls.name];
    const known = ctx.storages.get(key);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) {
        fail(`storage ${ctx.storageDir}${key} ${where()} is named as ${numel} ${dtype} elements but earlier as ${known.numel} ${known.dtype}; a storage has one dtype and size`);
      }
      return known;
    }
    const s = new StorageRef(key, dtype, numel);
    ctx.storages.set(key, s);
    return s;
  };

  const asInt = (v: PyValue, what: string): number => {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    return fail(`${what} ${where()} is ${typeof v === 'bigint' ? shownInt(v) : describe(v)}; expected an int below 2^53`);
  };
  const intTuple = (v: PyValue, what: string): number[] => {
    if (!(v instanceof PyTuple)) return fail(`${what} ${where()} is ${describe(v)}; expected a tuple of ints`);
    return v.items.map((x) => asInt(x, `an entry of ${what}`));
  };

  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof Global)) return fail(`REDUCE ${where()} calls ${describe(fn)}; only allowlisted globals may be called`);
    if (!(args instanceof PyTuple)) return fail(`REDUCE of ${fn.qualified} ${where()} has ${describe(args)} as arguments; expected a tuple`);
    const a = args.items;
    const badArgs = (expected: string): never => fail(`REDUCE of ${fn.qualified} ${where()} with ${a.length} argument(s) (${a.map(describe).join(', ')}); expected ${expected}`);
    switch (fn.qualified) {
      case 'collections.OrderedDict':
        if (a.length !== 0) badArgs('()');
        return new PyDict(true);
      case 'torch._utils._rebuild_tensor_v2': {
        if (a.length !== 6 && a.length !== 7) badArgs('(storage, offset, size, stride, requires_grad, hooks[, metadata])');
        const [storage, offset, size, stride, , hooks, metadata] = a;
        if (!(storage instanceof StorageRef)) return badArgs('a storage (persistent id) first');
        if (!(hooks instanceof PyDict) || hooks.items.size !== 0) return badArgs('empty backward hooks');
        if (metadata !== undefined && metadata !== null && !(metadata instanceof PyDict)) return badArgs('a dict of metadata last');
        return viewOf(storage, asInt(offset, 'storage offset'), intTuple(size, 'tensor size'), intTuple(stride, 'tensor stride'), {
          file: ctx.file,
          where: `tensor ${where()}`,
          storageName: `${ctx.storageDir}${storage.key}`,
        });
      }
      case 'torch._utils._rebuild_parameter':
        if (a.length !== 3 || !(a[0] instanceof TensorRef) || typeof a[1] !== 'boolean' || !(a[2] instanceof PyDict)) {
          return badArgs('(tensor, requires_grad, hooks)');
        }
        return a[0];
      case 'torch.jit._pickle.restore_type_tag':
        if (a.length !== 2 || typeof a[1] !== 'string') badArgs('(value, type string)');
        return a[0];
      default:
        // build_intlist / build_tensorlist / build_doublelist / build_boollist
        if (!REDUCIBLE.has(fn.qualified)) return fail(`refused REDUCE of ${fn.qualified} ${where()} (only tensors, ordered dicts and TorchScript lists are rebuilt)`);
        if (a.length !== 1 || !(a[0] instanceof PyList)) badArgs('(list,)');
        return a[0];
    }
  };

  for (;;) {
    at = pos;
    need(1);
    const op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        need(1);
        const p = bytes[pos++];
        if (p !== 2) fail(`pickle protocol ${p} ${where()}; torch.save writes protocol 2 (files saved with another pickle_protocol are not supported)`);
        break;
      }
      case 0x2e: { // STOP
        if (marks.length !== 0 || stack.length !== 1) fail(`STOP ${where()} with ${stack.length} values and ${marks.length} open MARKs on the stack; expected exactly one value`);
        return { value: stack[0], end: pos };
      }
      case 0x28: // MARK
        if (marks.length >= MAX_MARKS) fail(`pickle nests more than ${MAX_MARKS} MARKs ${where()} (a checkpoint nests a few dozen)`);
        marks.push(stack.length);
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: { // TUPLE1..3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(new PyTuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(new PyList());
        break;
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!(l instanceof PyList)) fail(`APPEND ${where()} on ${describe(l)} (expected a list)`);
        (l as PyList).items.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!(l instanceof PyList)) fail(`APPENDS ${where()} on ${describe(l)} (expected a list)`);
        for (const v of items) (l as PyList).items.push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict(false));
        break;
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail(`SETITEMS ${where()} with an odd number (${items.length}) of keys and values`);
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x71: // BINPUT
        need(1);
        memoPut(bytes[pos++]);
        break;
      case 0x72: // LONG_BINPUT
        need(4);
        memoPut(view.getUint32(pos, true));
        pos += 4;
        break;
      case 0x68: // BINGET
        need(1);
        memoGet(bytes[pos++]);
        break;
      case 0x6a: // LONG_BINGET
        need(4);
        memoGet(view.getUint32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        need(1);
        push(bytes[pos++]);
        break;
      case 0x4d: // BININT2
        need(2);
        push(view.getUint16(pos, true));
        pos += 2;
        break;
      case 0x4a: // BININT
        need(4);
        push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x8a: { // LONG1
        need(1);
        const n = bytes[pos++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n > 0 && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        push(int(v));
        break;
      }
      case 0x47: // BINFLOAT
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x58: { // BINUNICODE
        need(4);
        const n = view.getUint32(pos, true);
        pos += 4;
        need(n);
        let s: string;
        try {
          s = utf8.decode(bytes.subarray(pos, pos + n));
        } catch {
          return fail(`BINUNICODE ${where()} is not valid UTF-8`);
        }
        pos += n;
        push(s);
        break;
      }
      case 0x63: { // GLOBAL
        const module = readLine();
        const name = readLine();
        push(admitGlobal(module, name));
        break;
      }
      case 0x51: // BINPERSID
        push(persistent(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!(cls instanceof Global) || !isScriptClass(cls)) fail(`refused NEWOBJ of ${describe(cls)} ${where()} (only TorchScript __torch__ classes are instantiated, as attribute bags)`);
        if (!(args instanceof PyTuple) || args.items.length !== 0) fail(`NEWOBJ of ${(cls as Global).qualified} ${where()} with ${describe(args)}; expected ()`);
        push(new ScriptObject((cls as Global).qualified));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof ScriptObject && target.attrs === null && state instanceof PyDict && !state.ordered) {
          for (const k of state.items.keys()) {
            if (typeof k !== 'string') fail(`BUILD of ${target.className} ${where()} with a non-str attribute name`);
          }
          target.attrs = state;
        } else if (target instanceof PyDict && target.ordered && target.attrs === null && state instanceof PyDict) {
          target.attrs = state;
        } else {
          fail(`refused BUILD ${where()} of ${describe(target)} with ${describe(state)} (only TorchScript objects and OrderedDicts take a dict of attributes, once)`);
        }
        break;
      }
      default: {
        const name = OPCODE_NAMES.get(op);
        fail(`refused pickle opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` ${name}` : ''} ${where()} (torch checkpoints use only the protocol-2 opcodes of tensors and containers)`);
      }
    }
  }
}
