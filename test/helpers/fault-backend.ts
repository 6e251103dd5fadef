// A Backend wrapper that fails on demand, for fault-injection tests: the Nth call of an operation
// fails with EIO or ENOSPC (as the local backend reports them: a SnapError made from the system
// error), or, for writes, as a short write: a truncated blob lands under the final name and the
// call then throws (a backend without atomic writes, or a disk that lied about a write).
import type { Backend, BackendCapabilities, BlobInfo } from '../../src/backend/backend.js';
import { fromSystemError } from '../../src/core/errors.js';

export type FaultOp = 'put' | 'get' | 'list' | 'delete';
export type FaultKind = 'EIO' | 'ENOSPC' | 'short';

export interface Fault {
  op: FaultOp;
  /** 1-based: the Nth call of `op` fails. */
  n: number;
  kind: FaultKind;
  /** Keep failing every later call of `op` too (a disk that stays full or broken). */
  sticky?: boolean;
  /** Only calls whose blob name starts with this count (e.g. 'data/', 'snapshots/'). */
  prefix?: string;
}

/** Calls per operation; `put` counts put, putIfAbsent and putStream, `get` counts get, getRange and getStream. */
export type CallCounts = Record<FaultOp, number>;

function systemError(code: 'EIO' | 'ENOSPC', syscall: string, name: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: injected fault, ${syscall} '${name}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = code === 'EIO' ? -5 : -28;
  e.syscall = syscall;
  return e;
}

export class FaultBackend implements Backend {
  readonly calls: CallCounts = { put: 0, get: 0, list: 0, delete: 0 };
  /** Every fault that fired, for messages. */
  readonly fired: string[] = [];
  private tripped = false;

  constructor(private readonly inner: Backend, private readonly fault?: Fault) {}

  get location(): string {
    return this.inner.location;
  }

  /** Count the call; the fault to apply to it, if any. */
  private check(op: FaultOp, name: string): FaultKind | undefined {
    const f = this.fault;
    if (f && f.prefix !== undefined && !name.startsWith(f.prefix)) return undefined;
    const n = ++this.calls[op];
    if (!f || f.op !== op) return undefined;
    if (n === f.n || (f.sticky && this.tripped)) {
      this.tripped = true;
      this.fired.push(`${op} #${n} ${name}: ${f.kind}`);
      return f.kind;
    }
    return undefined;
  }

  private fail(kind: FaultKind, syscall: string, name: string): never {
    throw fromSystemError(systemError(kind === 'ENOSPC' ? 'ENOSPC' : 'EIO', syscall, name), `${syscall} ${name} (injected)`);
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const k = this.check('put', name);
    if (k === 'short') {
      await this.inner.put(name, data.subarray(0, Math.floor(data.length / 2)));
      this.fail('EIO', 'write', name);
    }
    if (k) this.fail(k, 'write', name);
    return this.inner.put(name, data);
  }

  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    const k = this.check('put', name);
    if (k === 'short') {
      await this.inner.putIfAbsent(name, data.subarray(0, Math.floor(data.length / 2)));
      this.fail('EIO', 'write', name);
    }
    if (k) this.fail(k, 'write', name);
    return this.inner.putIfAbsent(name, data);
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    const k = this.check('put', name);
    if (k === 'short') {
      const half: Uint8Array[] = [];
      for await (const p of source) half.push(Uint8Array.from(p));
      const all = Buffer.concat(half);
      await this.inner.put(name, all.subarray(0, Math.floor(all.length / 2)));
      this.fail('EIO', 'write', name);
    }
    if (k) this.fail(k, 'write', name);
    return this.inner.putStream(name, source, size);
  }

  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    const k = this.check('get', name);
    if (k) this.fail(k === 'short' ? 'EIO' : k, 'read', name);
    yield* this.inner.getStream(name, range);
  }

  capabilities(): Promise<BackendCapabilities> {
    return this.inner.capabilities();
  }

  async get(name: string): Promise<Buffer> {
    const k = this.check('get', name);
    if (k === 'short') return (await this.inner.get(name)).subarray(0, 0);
    if (k) this.fail(k, 'read', name);
    return this.inner.get(name);
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const k = this.check('get', name);
    if (k) this.fail(k === 'short' ? 'EIO' : k, 'read', name);
    return this.inner.getRange(name, offset, length);
  }

  stat(name: string): Promise<BlobInfo | undefined> {
    return this.inner.stat(name);
  }

  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    const k = this.check('list', prefix);
    if (k) this.fail(k === 'short' ? 'EIO' : k, 'readdir', prefix);
    yield* this.inner.list(prefix);
  }

  async delete(name: string): Promise<void> {
    const k = this.check('delete', name);
    if (k) this.fail(k === 'short' ? 'EIO' : k, 'unlink', name);
    return this.inner.delete(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
