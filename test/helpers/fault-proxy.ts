// A TCP proxy for fault-injection tests, between a client and a real server (radosgw): it
// forwards bytes both ways and, for the requests a rule picks, delays them, drops the
// connection, resets it (RST), truncates it (FIN after N bytes) or stalls it (stops forwarding,
// so the client's idle timeout fires), in the upload ('up') or download ('down') direction.
//
// It follows HTTP/1.1 request boundaries on the client side (request line, headers,
// Content-Length body; the S3 backend never sends chunked bodies), so a rule sees each request
// (method, path, its number) even on kept-alive connections, and 'down' offsets count the
// bytes of the answer to that request. `seeded(...)` picks faults at random from a seed, so a
// failing run can be replayed.
import * as net from 'node:net';

export type Direction = 'up' | 'down';
export type Fault =
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'reset'; dir: Direction; after: number }
  | { kind: 'truncate'; dir: Direction; after: number }
  | { kind: 'stall'; dir: Direction; after: number };

export interface ProxyRequest {
  /** Connection number, from 0. */
  conn: number;
  /** Request number over the proxy's life, from 0. */
  index: number;
  method: string;
  /** The request target (path and query). */
  path: string;
  /** The header block, lower-cased (to match e.g. `if-none-match`). */
  headers: string;
}

export interface ProxyEvent {
  req: ProxyRequest;
  fault?: Fault;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export class FaultProxy {
  /** Decides the fault (or none) for each request. */
  rule: (r: ProxyRequest) => Fault | undefined = () => undefined;
  readonly events: ProxyEvent[] = [];
  private conns = 0;
  private requests = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number, private readonly target: { host: string; port: number }) {}

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const p = new FaultProxy(server, (server.address() as net.AddressInfo).port, target);
    server.on('connection', (c) => p.handle(c));
    return p;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Faults at random: each request gets one with probability `rate`, kind and offset from a PRNG seeded with `seed`. */
  seeded(seed: number, rate: number, kinds: Fault['kind'][] = ['delay', 'drop', 'reset', 'truncate']): void {
    let a = seed >>> 0;
    const rnd = (): number => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    this.rule = () => {
      if (rnd() >= rate) return undefined;
      const kind = kinds[Math.floor(rnd() * kinds.length)]!;
      const dir: Direction = rnd() < 0.5 ? 'up' : 'down';
      const after = Math.floor(rnd() * 300_000);
      switch (kind) {
        case 'delay': return { kind, ms: Math.floor(rnd() * 300) };
        case 'drop': return { kind };
        default: return { kind, dir, after };
      }
    };
  }

  /** Faults that fired, and how many requests passed. */
  get faults(): ProxyEvent[] {
    return this.events.filter((e) => e.fault);
  }

  private handle(client: net.Socket): void {
    const conn = this.conns++;
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const kill = (how: 'reset' | 'end'): void => {
      for (const s of [client, upstream]) {
        if (how === 'reset') s.resetAndDestroy();
        else s.end(() => s.destroy());
      }
    };
    client.on('close', () => {
      this.sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());

    // Client -> server: split into requests; apply the current request's 'up' fault.
    let head = Buffer.alloc(0);
    let bodyLeft = 0;
    let inHeaders = true;
    let fault: Fault | undefined;
    let upBytes = 0;
    let downBytes = 0;
    let stalled: Direction | undefined;
    let dead = false;
    let queue = Promise.resolve();

    const forwardUp = (piece: Buffer): void => {
      if (dead || stalled === 'up' || piece.length === 0) return;
      if (fault && fault.kind !== 'delay' && fault.kind !== 'drop' && fault.dir === 'up' && upBytes + piece.length >= fault.after) {
        const n = Math.max(0, fault.after - upBytes);
        upstream.write(piece.subarray(0, n));
        upBytes += n;
        if (fault.kind === 'stall') {
          stalled = 'up';
          return;
        }
        dead = true;
        kill(fault.kind === 'reset' ? 'reset' : 'end');
        return;
      }
      upBytes += piece.length;
      upstream.write(piece);
    };

    const startRequest = (headers: Buffer): void => {
      const text = headers.toString('latin1');
      const [method = '?', path = '?'] = text.split('\r\n', 1)[0]!.split(' ');
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      bodyLeft = m ? Number(m[1]) : 0;
      const req: ProxyRequest = { conn, index: this.requests++, method, path, headers: text.toLowerCase() };
      fault = this.rule(req);
      this.events.push(fault ? { req, fault } : { req });
      upBytes = 0;
      downBytes = 0;
      if (fault?.kind === 'drop') {
        dead = true;
        kill('reset');
      }
    };

    const onData = async (chunk: Buffer): Promise<void> => {
      let rest = chunk;
      while (rest.length > 0 && !dead) {
        if (inHeaders) {
          head = Buffer.concat([head, rest]);
          const end = head.indexOf(HEADER_END);
          if (end < 0) return;
          const headers = head.subarray(0, end + 4);
          rest = head.subarray(end + 4);
          head = Buffer.alloc(0);
          startRequest(headers);
          if (dead) return;
          if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault && fault.kind === 'delay' ? fault.ms : 0));
          forwardUp(headers);
          inHeaders = bodyLeft === 0;
        } else {
          const n = Math.min(bodyLeft, rest.length);
          forwardUp(rest.subarray(0, n));
          bodyLeft -= n;
          rest = rest.subarray(n);
          if (bodyLeft === 0) inHeaders = true;
        }
      }
    };
    // Keep order: a delayed request holds back everything after it on this connection.
    client.on('data', (chunk: Buffer) => {
      queue = queue.then(() => onData(chunk));
    });

    // Server -> client: apply the current request's 'down' fault.
    upstream.on('data', (piece: Buffer) => {
      if (dead || stalled === 'down') return;
      if (fault && fault.kind !== 'delay' && fault.kind !== 'drop' && fault.dir === 'down' && downBytes + piece.length >= fault.after) {
        const n = Math.max(0, fault.after - downBytes);
        client.write(piece.subarray(0, n));
        downBytes += n;
        if (fault.kind === 'stall') {
          stalled = 'down';
          return;
        }
        dead = true;
        kill(fault.kind === 'reset' ? 'reset' : 'end');
        return;
      }
      downBytes += piece.length;
      client.write(piece);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
